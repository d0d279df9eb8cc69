"""The Train tab's form: the recipe first, its values for the chosen role, and what this job changes.

The form shows the recipe's values (``core.jobs.recipe_values``); a field the person edits becomes an override,
marked beside its label, recorded in the run's config.json, and undone with "Reset to recipe". Seed and the
number of training images belong to the job, not to the recipe. The form turns its state into a
``core.jobs.JobSpec``, the same description the command line builds, and remembers it in QSettings.

Kept in one module: one form and its recipe/override bookkeeping.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QTabBar,
    QVBoxLayout,
    QWidget,
)

from app.gui.settings import app_settings, read_value, write_values

SETTINGS_GROUP = "train"
ROLES = ("teacher", "student", "distilled")
ROLE_TITLES = {"teacher": "Teacher", "student": "Student", "distilled": "Distilled"}
#: Fields shown per role (the training group) and for distillation (the distillation group).
TRAIN_FIELDS = ("epochs", "batch_size", "lr", "optimizer", "augment")
KD_FIELDS = ("temperature", "alpha")
LABELS = {
    "epochs": "Epochs",
    "batch_size": "Batch size",
    "lr": "Learning rate",
    "optimizer": "Optimiser",
    "augment": "Online jitter",
    "temperature": "Temperature T",
    "alpha": "Alpha (soft weight)",
}
CHANGED_MARK = " ●"
DEFAULT_RECIPE = "strong"


def teacher_label(info) -> str:
    """The Teacher list's text for a run: its time stamp, test accuracy and epochs, short enough to read.

    The folder name's ``-<recipe>-teacher`` ending is left out (the list holds only the current recipe's
    teachers); the full folder name and path are in the item's tooltip.
    """
    stamp = info.name.replace(f"-{info.recipe}-teacher", "", 1)
    acc = f"{info.test_accuracy:.2%}" if info.test_accuracy is not None else "?"
    return f"{stamp} · {acc} · {info.epochs_done}/{info.epochs} ep"


class LabelledSlider(QWidget):
    """A horizontal slider with its value shown beside it (``scale`` maps slider steps to the value)."""

    valueChanged = Signal(float)  # noqa: N815 - Qt naming, like the other fields' signal

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
        self.valueChanged.emit(self.value())


class TrainForm(QWidget):
    """Recipe, role, the recipe's values with this job's overrides, distillation settings, seed and subset.

    Signals
    -------
    recipe_changed(str)
        Another recipe was chosen.
    teacher_changed()
        The chosen teacher changed (or the list was refreshed).
    overrides_changed()
        A field was edited or reset.
    """

    recipe_changed = Signal(str)
    teacher_changed = Signal()
    overrides_changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        from core.recipes import RECIPES

        self._overrides: dict[str, dict[str, Any]] = {role: {} for role in ROLES}
        self._loading = False
        self.recipe = QComboBox()
        for name, recipe in RECIPES.items():
            self.recipe.addItem(name, name)
            self.recipe.setItemData(self.recipe.count() - 1, recipe.description, Qt.ItemDataRole.ToolTipRole)
        self.recipe.setToolTip(
            "The recipe: architectures and every default hyperparameter of the three models"
        )
        self.role_bar = QTabBar()
        for role in ROLES:
            self.role_bar.addTab(ROLE_TITLES[role])
        self.role_bar.setToolTip("Whose training settings the fields below show (each button trains its own)")
        self.reset_button = QPushButton("Reset to recipe")
        self.reset_button.setToolTip("Drop every change: the fields show the recipe's values again")
        self.changed_label = QLabel()
        self.changed_label.setObjectName("hint")

        self.epochs = QSpinBox(minimum=1, maximum=1000)
        self.epochs.setToolTip("Passes over the training set")
        self.batch_size = QSpinBox(minimum=1, maximum=8192, singleStep=32)
        self.batch_size.setToolTip("Images per optimiser step")
        self.lr = QDoubleSpinBox(minimum=0.00001, maximum=10.0, decimals=5, singleStep=0.0005)
        self.lr.setToolTip("Peak learning rate (warm-up and schedule as the recipe says)")
        self.optimizer = QComboBox()
        for name in ("sgd", "adam"):
            self.optimizer.addItem({"sgd": "SGD (Nesterov momentum)", "adam": "Adam"}[name], name)
        self.augment = QCheckBox("shift, rotate, scale, shear each batch")
        self.augment.setToolTip(
            "Random affine jitter of each training batch (the students of a recipe with an augmentation pool "
            "train on fixed jittered copies instead)"
        )
        self.temperature = LabelledSlider(1, 20, tip="Softmax temperature T of the distillation (paper: 6)")
        self.alpha = LabelledSlider(
            0, 100, scale=0.01, decimals=2, tip="Weight of the soft loss; 1 - alpha on labels"
        )
        self.teacher = QComboBox()
        self.teacher.setToolTip("The complete teacher run the student learns from")
        self.teacher.setMinimumContentsLength(20)
        self.teacher.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.seed.setToolTip("Random seed: the same seed and settings give the same run")
        self.samples = QSpinBox(minimum=0, maximum=60000, value=0, singleStep=1000)
        self.samples.setSpecialValueText("all 60,000")
        self.samples.setToolTip("Train on a fixed random subset for a quick try (0: the whole training set)")

        # Spin boxes, a combo box, a check box and two slider fields, told apart by key.
        self._widgets: dict[str, Any] = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "optimizer": self.optimizer,
            "augment": self.augment,
            "temperature": self.temperature,
            "alpha": self.alpha,
        }
        self._labels = {key: QLabel(LABELS[key]) for key in self._widgets}
        self._build_layout()
        self.recipe.currentIndexChanged.connect(self._on_recipe_changed)
        self.role_bar.currentChanged.connect(lambda _: self._show_values())
        self.teacher.currentIndexChanged.connect(lambda _: self.teacher_changed.emit())
        self.reset_button.clicked.connect(self.reset_to_recipe)
        for key, widget in self._widgets.items():
            signal = {
                "augment": getattr(widget, "toggled", None),
                "optimizer": getattr(widget, "currentIndexChanged", None),
            }.get(key) or widget.valueChanged
            signal.connect(lambda *_, key=key: self._edited(key))
        index = self.recipe.findData(DEFAULT_RECIPE)
        self.recipe.setCurrentIndex(max(0, index))
        self._show_values()

    def _build_layout(self) -> None:
        recipe_box = QGroupBox("Recipe")
        top = QFormLayout(recipe_box)
        top.addRow("Recipe", self.recipe)
        reset_row = QHBoxLayout()
        reset_row.addWidget(self.changed_label, 1)
        reset_row.addWidget(self.reset_button)
        top.addRow(reset_row)
        training = QGroupBox("Training")
        form = QFormLayout(training)
        form.addRow(self.role_bar)
        for key in TRAIN_FIELDS:
            form.addRow(self._labels[key], self._widgets[key])
        distillation = QGroupBox("Distillation")
        kd_form = QFormLayout(distillation)
        for key in KD_FIELDS:
            kd_form.addRow(self._labels[key], self._widgets[key])
        kd_form.addRow("Teacher", self.teacher)
        job = QGroupBox("This job")
        job_form = QFormLayout(job)
        job_form.addRow("Seed", self.seed)
        job_form.addRow("Training images", self.samples)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for box in (recipe_box, training, distillation, job):
            layout.addWidget(box)

    # -- values ---------------------------------------------------------------------------------------
    def recipe_name(self) -> str:
        """The chosen recipe's name."""
        return self.recipe.currentData()

    def role(self) -> str:
        """The role whose training settings are shown."""
        return ROLES[max(0, self.role_bar.currentIndex())]

    def show_role(self, role: str) -> None:
        """Show ``role``'s training settings."""
        self.role_bar.setCurrentIndex(ROLES.index(role))

    def recipe_values(self, role: str | None = None) -> dict[str, Any]:
        """The recipe's values for ``role`` (default: the one shown)."""
        from core.jobs import recipe_values

        return recipe_values(self.recipe_name(), role or self.role())

    def overrides(self, role: str | None = None) -> dict[str, Any]:
        """What this job changes from the recipe for ``role`` (temperature and alpha belong to the distilled role)."""
        return dict(self._overrides[role or self.role()])

    def _widget_value(self, key: str):
        widget = self._widgets[key]
        if key == "augment":
            return widget.isChecked()
        if key == "optimizer":
            return widget.currentData()
        value = widget.value()
        return int(value) if key in ("epochs", "batch_size") else float(value)

    def _set_widget(self, key: str, value) -> None:
        widget = self._widgets[key]
        if key == "augment":
            widget.setChecked(bool(value))
        elif key == "optimizer":
            widget.setCurrentIndex(max(0, widget.findData(value)))
        elif key in KD_FIELDS:
            widget.set_value(float(value))
        else:
            widget.setValue(value)

    def _role_of(self, key: str) -> str:
        return "distilled" if key in KD_FIELDS else self.role()

    def _edited(self, key: str) -> None:
        if self._loading:
            return
        role = self._role_of(key)
        shown = self._widget_value(key)
        base = self.recipe_values(role)[key]
        same = abs(shown - base) <= 1e-9 * max(1.0, abs(base)) if isinstance(base, float) else shown == base
        if same:
            self._overrides[role].pop(key, None)
        else:
            self._overrides[role][key] = shown
        self._mark()
        self.overrides_changed.emit()

    def _show_values(self) -> None:
        """Fill the fields with the recipe's values and this job's overrides, then mark the changed ones."""
        self._loading = True
        try:
            for key in self._widgets:
                role = self._role_of(key)
                self._set_widget(key, (self.recipe_values(role) | self._overrides[role])[key])
        finally:
            self._loading = False
        self._mark()

    def _mark(self) -> None:
        for key, label in self._labels.items():
            role = self._role_of(key)
            changed = key in self._overrides[role]
            label.setText(LABELS[key] + (CHANGED_MARK if changed else ""))
            font = label.font()
            font.setBold(changed)
            label.setFont(font)
            base = self.recipe_values(role)[key]
            label.setToolTip(f"Changed from the recipe's {base}" if changed else "The recipe's value")
        count = sum(len(v) for v in self._overrides.values())
        self.changed_label.setText(
            f"{count} change{'s' if count != 1 else ''} from the recipe (marked {CHANGED_MARK.strip()})"
            if count
            else "The recipe's values"
        )
        self.reset_button.setEnabled(count > 0)

    def set_values(self, values: dict[str, Any], roles: tuple[str, ...] = ROLES) -> None:
        """Type ``values`` into the form for each of ``roles``, as a person would.

        Each value becomes an override where it differs from the recipe; ``recipe``, ``seed`` and ``samples``
        set those controls.
        """
        if "recipe" in values and self.recipe.findData(values["recipe"]) >= 0:
            self.recipe.setCurrentIndex(self.recipe.findData(values["recipe"]))
        shown = self.role()
        for role in roles:
            self.show_role(role)
            for key in TRAIN_FIELDS + (KD_FIELDS if role == "distilled" else ()):
                if key in values:
                    self._set_widget(key, values[key])
        self.show_role(shown)
        if "seed" in values:
            self.seed.setValue(int(values["seed"]))
        if "samples" in values:
            self.samples.setValue(int(values["samples"]))

    def is_changed(self, key: str) -> bool:
        """True when the field ``key`` shows an override (for the role it belongs to)."""
        return key in self._overrides[self._role_of(key)]

    def reset_to_recipe(self) -> None:
        """Drop every override of every role."""
        self._overrides = {role: {} for role in ROLES}
        self._show_values()
        self.overrides_changed.emit()

    def _on_recipe_changed(self, _index: int) -> None:
        self._overrides = {role: {} for role in ROLES}  # changes belong to the recipe they were made against
        self._show_values()
        self.recipe_changed.emit(self.recipe_name())

    def job_spec(self, role: str, data_dir: Path | None = None, runs_root: Path | None = None):
        """The :class:`core.jobs.JobSpec` for training ``role`` with the form's choices."""
        from core.jobs import JobSpec

        teacher = self.teacher_run() if role == "distilled" else None
        return JobSpec(
            recipe=self.recipe_name(),
            role=role,
            overrides=self.overrides(role),
            teacher_run=teacher,
            seed=self.seed.value(),
            max_train_samples=self.samples.value() or None,
            data_dir=data_dir,
            runs_root=runs_root,
        )

    def teacher_run(self) -> Path | None:
        """Run folder of the chosen teacher, or None when there is none yet."""
        data = self.teacher.currentData()
        return Path(data) if data else None

    def refresh_teachers(self, runs_root: Path, select_newest: bool = False) -> None:
        """List the complete teachers of the current recipe (newest first); keep the choice unless told."""
        from core.jobs import teacher_runs

        current = self.teacher.currentData()
        self.teacher.blockSignals(True)
        self.teacher.clear()
        for info in teacher_runs(self.recipe_name(), runs_root):
            self.teacher.addItem(teacher_label(info), str(info.path))
            self.teacher.setItemData(
                self.teacher.count() - 1, f"{info.name}\n{info.path}", Qt.ItemDataRole.ToolTipRole
            )
        if self.teacher.count() == 0:
            self.teacher.addItem("none yet: train one (Ctrl+T)", None)
            self.teacher.setItemData(
                0,
                "No complete teacher run of this recipe yet: Train Teacher (Ctrl+T)",
                Qt.ItemDataRole.ToolTipRole,
            )
        index = self.teacher.findData(current) if current is not None and not select_newest else -1
        self.teacher.setCurrentIndex(max(0, index))
        self.teacher.blockSignals(False)
        self.teacher_changed.emit()

    # -- settings -------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything the form remembers: recipe, shown role, overrides per role, seed, training images."""
        return {
            "recipe": self.recipe_name(),
            "role": self.role(),
            "overrides": {role: dict(v) for role, v in self._overrides.items()},
            "seed": self.seed.value(),
            "samples": self.samples.value(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state` (unknown recipes, roles and keys are ignored)."""
        from core.jobs import OVERRIDE_KEYS

        if self.recipe.findData(state.get("recipe")) >= 0:
            self.recipe.setCurrentIndex(self.recipe.findData(state["recipe"]))
        if state.get("role") in ROLES:
            self.show_role(state["role"])
        saved = state.get("overrides") or {}
        self._overrides = {
            role: {
                k: v for k, v in (saved.get(role) or {}).items() if k in OVERRIDE_KEYS and k in self._widgets
            }
            for role in ROLES
        }
        self.seed.setValue(int(state.get("seed", 0)))
        self.samples.setValue(int(state.get("samples", 0)))
        self._show_values()

    def load_settings(self) -> None:
        """Restore the last state (default: the strong recipe's values)."""
        settings = app_settings()
        settings.beginGroup(SETTINGS_GROUP)
        text = read_value(settings, "state", "")
        settings.endGroup()
        try:
            state = json.loads(text) if text else {}
        except json.JSONDecodeError:
            state = {}
        if isinstance(state, dict):
            self.set_state(state)

    def save_settings(self) -> None:
        """Remember the state."""
        write_values(app_settings(), SETTINGS_GROUP, {"state": json.dumps(self.state())})
