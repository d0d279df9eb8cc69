"""Qt-free engine of digit-distill: data, models, losses, training, export, inference."""

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
