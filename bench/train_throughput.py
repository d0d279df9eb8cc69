"""Training throughput, measured side by side in one run (ratios, not absolute times).

Prints:
1. this machine's float32 matrix-product rate (GFLOP/s);
2. one paper-teacher epoch (784-2000-2000-10, 60,000 images) with our trainer, and its ratio to the ideal time
   epoch FLOPs / measured rate (target <= 1.5);
3. the textbook way (per-sample Dataset + DataLoader, Adam, batch 64) for a few hundred batches, extrapolated to an
   epoch, and our speed-up over it (target >= 25x);
4. a distillation epoch (cached teacher logits) against a plain student epoch (target <= 1.5x).

Run: ``python bench/train_throughput.py [--textbook-batches 300] [--device cpu]``
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import torch
from torch.utils.data import DataLoader, Dataset

from core.data import load_mnist
from core.models import PRESETS, build_model, forward_flops
from core.training import KDConfig, TrainConfig, resolve_device, train


def matmul_rate(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """Best-of-3 float32 matmul rate in FLOP/s."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = 0.0
    for _ in range(3):
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(repeats):
            a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - t))
    return best


class PerSampleMNIST(Dataset):
    """The textbook dataset: one sample at a time."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


def textbook_epoch_seconds(data, device, batches: int) -> float:
    """Time ``batches`` steps of DataLoader + Adam (batch 64) on the paper teacher; extrapolate to one epoch."""
    torch.manual_seed(0)
    model = build_model(PRESETS["paper"].teacher).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(PerSampleMNIST(data.train_images, data.train_labels), batch_size=64, shuffle=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    it = iter(loader)
    for _ in range(5):  # warm-up
        x, y = next(it)
        loss_fn(model(x.to(device)), y.to(device)).backward()
        opt.step()
        opt.zero_grad()
    t = time.perf_counter()
    for _ in range(batches):
        x, y = next(it)
        loss = loss_fn(model(x.to(device)), y.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / batches * len(loader)


def epoch_seconds(result) -> float:
    """Seconds of the last epoch's training (the trainer's per-epoch time includes the test evaluation)."""
    return result.history[-1]["seconds"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--textbook-batches", type=int, default=300)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-dir")
    parser.add_argument(
        "--max-train-samples", type=int, help="smaller epochs (smoke tests); ratios stay comparable"
    )
    parser.add_argument("--max-test-samples", type=int, help="a smaller test set (smoke tests)")
    parser.add_argument(
        "--matmul-size",
        type=int,
        default=2048,
        help="side of the matrices timed for the rate (smoke tests: less)",
    )
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    data = load_mnist(args.data_dir)
    if args.max_train_samples or args.max_test_samples:
        data = data.subset(
            args.max_train_samples or len(data.train_labels), args.max_test_samples or len(data.test_labels)
        )
    print(f"device: {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")

    rate = matmul_rate(device, n=args.matmul_size)
    print(f"float32 matmul rate: {rate / 1e9:.1f} GFLOP/s")

    teacher_cfg = PRESETS["paper"].teacher
    cfg = TrainConfig(epochs=1, batch_size=512, lr=0.05, device=str(device))
    result = train("teacher", "paper", teacher_cfg, cfg, data)
    ours = epoch_seconds(result)
    # Forward 2 FLOPs per MAC; backward twice that (weight and input gradients): 3x forward per training image,
    # plus the test-set forward pass included in the epoch time.
    flops = 3 * forward_flops(teacher_cfg) * len(data.train_labels) + forward_flops(teacher_cfg) * len(
        data.test_labels
    )
    ideal = flops / rate
    print(
        f"teacher epoch: {ours:.2f} s; ideal at the measured rate {ideal:.2f} s "
        f"({flops / 1e12:.2f} TFLOP); ratio {ours / ideal:.2f} (target <= 1.5)"
    )

    textbook = textbook_epoch_seconds(data, device, args.textbook_batches)
    print(
        f"textbook DataLoader + Adam (batch 64) epoch, extrapolated from {args.textbook_batches} batches: "
        f"{textbook:.1f} s; speed-up {textbook / ours:.1f}x (target >= 25x)"
    )

    student_cfg = PRESETS["paper"].student
    scfg = replace(cfg, epochs=2, batch_size=128)
    plain = train("student", "paper", student_cfg, scfg, data)
    distilled = train(
        "distilled", "paper", student_cfg, scfg, data, kd=KDConfig(6.0, 0.9), teacher=result.model
    )
    ratio = epoch_seconds(distilled) / epoch_seconds(plain)
    print(
        f"student epoch {epoch_seconds(plain):.2f} s, distillation epoch {epoch_seconds(distilled):.2f} s "
        f"(cached teacher logits): ratio {ratio:.2f} (target <= 1.5)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
