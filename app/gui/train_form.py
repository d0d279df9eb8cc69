"""The Train tab's form: preset and hyperparameters, distillation temperature and alpha, the teacher to use.

The form turns its values into ``core.training`` configs (which validate them) and remembers them in QSettings.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.gui.settings import app_settings, read_value, write_values
from app.gui.train_jobs import teacher_runs
from core.models import PRESETS
from core.training import KDConfig, TrainConfig

SETTINGS_GROUP = "train"
DEFAULTS = {
    "preset": "paper",
    "epochs": 20,
    "batch_size": 256,
    "lr": 0.02,  # 0.05 suits the teacher but makes distillation at T=6, alpha=0.9 diverge (MLP, momentum 0.9)
    "seed": 0,
    "samples": 0,
    "augment": False,
    "temperature": 6.0,
    "alpha": 0.9,
}


def teacher_label(info) -> str:
    """The Teacher list's text for a run: its time stamp, test accuracy and epochs, short enough to read.

    The folder name's ``-<preset>-teacher`` ending is left out (the list holds only the current preset's
    teachers); the full folder name and path are in the item's tooltip.
    """
    stamp = info.name.replace(f"-{info.preset}-teacher", "", 1)
    acc = f"{info.test_accuracy:.2%}" if info.test_accuracy is not None else "?"
    return f"{stamp} · {acc} · {info.epochs_done}/{info.epochs} ep"


class LabelledSlider(QWidget):
    """A horizontal slider with its value shown beside it (``scale`` maps slider steps to the value)."""

    def __init__(self, minimum: int, maximum: int, scale: float = 1.0, decimals: int = 0, tip: str = ""):
        super().__init__()
        self.scale, self.decimals = scale, decimals
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(minimum, maximum)
        self.slider.setToolTip(tip)
        self.label = QLabel()
        self.label.setMinimumWidth(40)
        self.label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.slider.valueChanged.connect(self._show)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)
        self._show()

    def value(self) -> float:
        """The value (slider position times scale)."""
        return round(self.slider.value() * self.scale, 6)

    def set_value(self, value: float) -> None:
        """Move the slider to the step nearest ``value``."""
        self.slider.setValue(int(round(value / self.scale)))

    def _show(self) -> None:
        self.label.setText(f"{self.value():.{self.decimals}f}")


class TrainForm(QWidget):
    """Hyperparameters, and the distillation settings with the teacher to learn from.

    Two groups: "Training" (preset, epochs, batch size, learning rate, seed, subset, augmentation) and
    "Distillation" (T, alpha, teacher).

    Signals
    -------
    preset_changed(str)
        Another preset was chosen.
    teacher_changed()
        The chosen teacher changed (or the list was refreshed).
    """

    preset_changed = Signal(str)
    teacher_changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.preset = QComboBox()
        for name, preset in PRESETS.items():
            self.preset.addItem(name, name)
            self.preset.setItemData(self.preset.count() - 1, preset.description, Qt.ItemDataRole.ToolTipRole)
        self.preset.setToolTip("Teacher/student pair: the paper's MLPs or a small CNN pair")
        self.epochs = QSpinBox(minimum=1, maximum=500, value=20)
        self.epochs.setToolTip("Passes over the training set (the paper: 20)")
        self.batch_size = QSpinBox(minimum=8, maximum=8192, value=256, singleStep=32)
        self.batch_size.setToolTip("Images per optimiser step")
        self.lr = QDoubleSpinBox(
            minimum=0.0001, maximum=2.0, value=DEFAULTS["lr"], decimals=4, singleStep=0.005
        )
        self.lr.setToolTip(
            "Peak learning rate (SGD with Nesterov momentum, cosine decay). "
            "Distillation at a high T is sensitive: above about 0.03 it can diverge."
        )
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.seed.setToolTip("Random seed: the same seed and settings give the same run")
        self.samples = QSpinBox(minimum=0, maximum=60000, value=0, singleStep=1000)
        self.samples.setSpecialValueText("all 60,000")
        self.samples.setToolTip("Train on a random subset for a quick try (0: the whole training set)")
        self.augment = QCheckBox("Augment (shift, rotate, scale)")
        self.augment.setToolTip("Random affine jitter of each training batch")
        self.temperature = LabelledSlider(1, 20, tip="Softmax temperature T of the distillation (paper: 6)")
        self.alpha = LabelledSlider(
            0, 100, scale=0.01, decimals=2, tip="Weight of the soft loss; 1 - alpha on labels"
        )
        self.teacher = QComboBox()
        self.teacher.setToolTip("The trained teacher the student learns from")
        self.teacher.setMinimumContentsLength(20)
        self.teacher.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.preset.currentIndexChanged.connect(lambda _: self.preset_changed.emit(self.preset.currentData()))
        self.teacher.currentIndexChanged.connect(lambda _: self.teacher_changed.emit())

        training = QGroupBox("Training")
        form = QFormLayout(training)
        form.addRow("Preset", self.preset)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Learning rate", self.lr)
        form.addRow("Seed", self.seed)
        form.addRow("Training images", self.samples)
        form.addRow("", self.augment)
        distillation = QGroupBox("Distillation")
        kd_form = QFormLayout(distillation)
        kd_form.addRow("Temperature T", self.temperature)
        kd_form.addRow("Alpha (soft weight)", self.alpha)
        kd_form.addRow("Teacher", self.teacher)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(training)
        layout.addWidget(distillation)

    # -- values ---------------------------------------------------------------------------------------
    def hyperparameters(self) -> dict:
        """The form's values as plain data."""
        return {
            "preset": self.preset.currentData(),
            "epochs": self.epochs.value(),
            "batch_size": self.batch_size.value(),
            "lr": self.lr.value(),
            "seed": self.seed.value(),
            "samples": self.samples.value(),
            "augment": self.augment.isChecked(),
            "temperature": self.temperature.value(),
            "alpha": self.alpha.value(),
        }

    def set_hyperparameters(self, values: dict) -> None:
        """Fill the form (unknown keys are ignored, missing ones left as they are)."""
        if "preset" in values and self.preset.findData(values["preset"]) >= 0:
            self.preset.setCurrentIndex(self.preset.findData(values["preset"]))
        for key, spin in (("epochs", self.epochs), ("batch_size", self.batch_size), ("seed", self.seed)):
            if key in values:
                spin.setValue(int(values[key]))
        if "samples" in values:
            self.samples.setValue(int(values["samples"]))
        if "lr" in values:
            self.lr.setValue(float(values["lr"]))
        if "augment" in values:
            self.augment.setChecked(bool(values["augment"]))
        if "temperature" in values:
            self.temperature.set_value(float(values["temperature"]))
        if "alpha" in values:
            self.alpha.set_value(float(values["alpha"]))

    def train_config(self) -> TrainConfig:
        """The training hyperparameters; raises ValueError with a readable message for a bad value."""
        values = self.hyperparameters()
        return TrainConfig(
            epochs=values["epochs"],
            batch_size=values["batch_size"],
            lr=values["lr"],
            seed=values["seed"],
            augment=values["augment"],
            max_train_samples=values["samples"] or None,
        )

    def kd_config(self) -> KDConfig:
        """Temperature and alpha of the distillation."""
        return KDConfig(temperature=self.temperature.value(), alpha=self.alpha.value())

    def teacher_run(self) -> Path | None:
        """Run folder of the chosen teacher, or None when there is none yet."""
        data = self.teacher.currentData()
        return Path(data) if data else None

    def refresh_teachers(self, runs_root: Path, select_newest: bool = False) -> None:
        """List the trained teachers of the current preset (newest first); keep the choice unless told."""
        current = self.teacher.currentData()
        self.teacher.blockSignals(True)
        self.teacher.clear()
        for info in teacher_runs(self.preset.currentData(), runs_root):
            self.teacher.addItem(teacher_label(info), str(info.path))
            self.teacher.setItemData(
                self.teacher.count() - 1, f"{info.name}\n{info.path}", Qt.ItemDataRole.ToolTipRole
            )
        if self.teacher.count() == 0:
            self.teacher.addItem("no teacher yet: train one (Ctrl+T)", None)
        index = self.teacher.findData(current) if current is not None and not select_newest else -1
        self.teacher.setCurrentIndex(max(0, index))
        self.teacher.blockSignals(False)
        self.teacher_changed.emit()

    # -- settings -------------------------------------------------------------------------------------
    def load_settings(self) -> None:
        """Restore the last values (defaults: the paper's setting, T=6, alpha=0.9)."""
        settings = app_settings()
        settings.beginGroup(SETTINGS_GROUP)
        values = {key: read_value(settings, key, default) for key, default in DEFAULTS.items()}
        settings.endGroup()
        self.set_hyperparameters(values)

    def save_settings(self) -> None:
        """Remember the values."""
        write_values(app_settings(), SETTINGS_GROUP, self.hyperparameters())
