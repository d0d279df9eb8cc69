"""Pick an ONNX model: the bundled defaults, a finished training run, or any ONNX file (validated).

:class:`ModelPicker` is a combo box with a browse button that any tab can embed. Every choice is validated by
loading it with :class:`core.inference.OnnxClassifier`; a file that is not a digit classifier is refused with
the loader's message (through the ``error`` signal) and the previous choice stays. A model that loads is run on
the check images (:func:`core.sanity.check_model`); one that does far worse than its card says, or is no better
than guessing, is used but announced through the ``warning`` signal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QToolButton, QWidget

from core.bundled import BUNDLED_DIR
from core.inference import InvalidModelError, OnnxClassifier
from core.runs import list_runs
from core.sanity import SanityReport, check_model

ROLES = ("teacher", "student")
#: Run roles that suit each slot, best first.
_RUN_ROLES = {"teacher": ("teacher",), "student": ("distilled", "student")}
_BROWSE = "browse"


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from.

    Attributes
    ----------
    kind
        ``"bundled"``, ``"run"`` or ``"file"``.
    path
        The ``.onnx`` file.
    label
        Short text for a combo box.
    role
        ``"teacher"``, ``"student"`` or ``"distilled"`` when known, else ``""``.
    accuracy
        MNIST test accuracy as a fraction when known.
    """

    kind: str
    path: Path
    label: str
    role: str = ""
    accuracy: float | None = None

    @property
    def description(self) -> str:
        """One line for a tooltip: where the file is and how good the model is."""
        acc = f", test accuracy {self.accuracy:.2%}" if self.accuracy is not None else ""
        return f"{self.kind} model{acc}: {self.path}"


def _accuracy_suffix(accuracy: float | None) -> str:
    return f" ({accuracy:.2%})" if accuracy is not None else ""


def _card_accuracy(card: Path) -> float | None:
    """The test accuracy written in a bundled model card, if the card exists and states one."""
    try:
        data = json.loads(card.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    for key in ("test_accuracy", "accuracy"):
        value = data.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) / 100 if value > 1 else float(value)
    return None


def bundled_sources(models_dir: Path | None = None) -> list[ModelSource]:
    """The bundled models that exist (``teacher.onnx``, ``student.onnx``), with the accuracy from their cards."""
    folder = Path(models_dir) if models_dir is not None else BUNDLED_DIR
    sources = []
    for role in ROLES:
        path = folder / f"{role}.onnx"
        if path.is_file():
            accuracy = _card_accuracy(path.with_suffix(".json"))
            label = f"Bundled {role}{_accuracy_suffix(accuracy)}"
            sources.append(ModelSource("bundled", path, label, role, accuracy))
    return sources


def run_sources(runs_root: Path | None = None) -> list[ModelSource]:
    """Finished training runs that have an exported ``model.onnx``, newest first."""
    sources = []
    for run in list_runs(runs_root):
        if run.finished and run.onnx_path is not None:
            label = f"Run {run.name}{_accuracy_suffix(run.test_accuracy)}"
            sources.append(ModelSource("run", run.onnx_path, label, run.role, run.test_accuracy))
    return sources


def file_source(path: Path) -> ModelSource:
    """A model chosen as a file."""
    path = Path(path)
    return ModelSource("file", path, f"File {path.name}")


def default_source(role: str, sources: list[ModelSource]) -> ModelSource | None:
    """The bundled model for ``role``, else the newest finished run of a suitable role, else ``None``."""
    for source in sources:
        if source.kind == "bundled" and source.role == role:
            return source
    for run_role in _RUN_ROLES.get(role, ()):
        for source in sources:
            if source.kind == "run" and source.role == run_role:
                return source
    return None


class _RefreshingCombo(QComboBox):
    """A combo box that lists the runs again each time it opens (a training may have just finished)."""

    about_to_open = Signal()

    def showPopup(self) -> None:  # noqa: D102, N802
        self.about_to_open.emit()
        super().showPopup()


class ModelPicker(QWidget):
    """Combo box of bundled models and finished runs, plus a button to open any ONNX file.

    Parameters
    ----------
    role
        ``"teacher"`` or ``"student"``: which model is selected by default and listed first.
    parent
        Parent widget.
    models_dir
        Folder of the bundled models (default :data:`BUNDLED_DIR`).
    runs_root
        Folder of training runs (default: ``core.runs.default_runs_root()``).
    load_default
        Load the default model now; with False, no model until :meth:`choose_default` (or another choice).

    Signals
    -------
    model_changed(object)
        A new valid model was chosen: emits the :class:`core.inference.OnnxClassifier` (``None`` if no model
        is available at all).
    error(str)
        A choice was refused; the message says why and what to do.
    warning(str)
        The chosen model was taken but looks broken (after ``model_changed``); the message says why.
    """

    model_changed = Signal(object)
    error = Signal(str)
    warning = Signal(str)

    def __init__(
        self,
        role: str,
        parent: QWidget | None = None,
        models_dir: Path | None = None,
        runs_root: Path | None = None,
        load_default: bool = True,
    ):
        super().__init__(parent)
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        self.role = role
        self._models_dir = models_dir
        self._runs_root = runs_root
        self._files: list[ModelSource] = []  # files opened this session stay in the list
        self._source: ModelSource | None = None
        self._classifier: OnnxClassifier | None = None
        self._sanity: SanityReport | None = None

        self.combo = _RefreshingCombo(self)
        self.combo.setMinimumContentsLength(16)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setToolTip(f"The {role} model: bundled, from a finished training run, or an ONNX file")
        self.browse_button = QToolButton(self)
        self.browse_button.setText("…")
        self.browse_button.setToolTip(f"Open an ONNX file as the {role} model")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.combo, 1)
        layout.addWidget(self.browse_button)

        self.combo.about_to_open.connect(self.refresh)
        self.combo.activated.connect(self._on_activated)
        self.browse_button.clicked.connect(self.browse)

        self.refresh()
        if load_default:
            self.choose_default()

    def choose_default(self) -> bool:
        """Load the default model (see :func:`default_source`); False when there is none or it is refused."""
        default = default_source(self.role, self._sources())
        return default is not None and self.choose(default)

    # ---------------------------------------------------------------------------------------- queries
    def source(self) -> ModelSource | None:
        """The chosen model's origin (``None`` until a model is chosen)."""
        return self._source

    def classifier(self) -> OnnxClassifier | None:
        """The loaded classifier of the chosen model (``None`` until a model is chosen)."""
        return self._classifier

    def sanity(self) -> SanityReport | None:
        """How the chosen model did on the check images (``None`` until a model is chosen)."""
        return self._sanity

    # ---------------------------------------------------------------------------------------- choices
    def _sources(self) -> list[ModelSource]:
        bundled = bundled_sources(self._models_dir)
        bundled.sort(key=lambda s: s.role != self.role)
        runs = run_sources(self._runs_root)
        suitable = _RUN_ROLES[self.role]
        runs.sort(key=lambda s: s.role not in suitable)  # stable: newest first within each group
        return bundled + runs + self._files

    def refresh(self) -> None:
        """List the bundled models, finished runs and opened files again, keeping the current choice."""
        sources = self._sources()
        if self._source is not None and self._source not in sources:
            sources.append(self._source)
        self.combo.blockSignals(True)
        self.combo.clear()
        for source in sources:
            self.combo.addItem(source.label, source)
            self.combo.setItemData(self.combo.count() - 1, source.description, Qt.ItemDataRole.ToolTipRole)
        if sources:
            self.combo.insertSeparator(self.combo.count())
        self.combo.addItem("Open an ONNX file…", _BROWSE)
        self._show_current()
        self.combo.blockSignals(False)

    def _show_current(self) -> None:
        items = [self.combo.itemData(i) for i in range(self.combo.count())]
        index = items.index(self._source) if self._source in items else -1
        if index < 0:
            self.combo.setCurrentIndex(-1)
            self.combo.setPlaceholderText(f"no {self.role} model")
        else:
            self.combo.setCurrentIndex(index)

    def _on_activated(self, index: int) -> None:
        data = self.combo.itemData(index)
        if data == _BROWSE:
            self._show_current()
            self.browse()
        elif isinstance(data, ModelSource) and data != self._source:
            self.choose(data)

    def browse(self) -> None:
        """Ask for an ONNX file and use it if it is a valid digit model."""
        start = str(self._source.path.parent) if self._source is not None else ""
        path, _ = QFileDialog.getOpenFileName(
            self, f"Open a {self.role} model", start, "ONNX models (*.onnx);;All files (*)"
        )
        if path:
            self.choose_file(Path(path))

    def source_for(self, path: Path) -> ModelSource:
        """The listed model whose file is ``path`` (a bundled model or a run), else a plain file source."""
        path = Path(path)
        for source in self._sources():
            if source.path == path:
                return source
        return file_source(path)

    def choose_file(self, path: Path) -> bool:
        """Use the ONNX file at ``path``; False (and an ``error`` signal) if it is not a valid model."""
        return self.choose(self.source_for(path))

    def choose(self, source: ModelSource) -> bool:
        """Load ``source`` and make it the current model; on failure emit ``error`` and keep the old one."""
        try:
            classifier = OnnxClassifier(source.path)
            sanity = check_model(classifier)
        except InvalidModelError as exc:
            self._show_current()
            self.error.emit(f"Cannot use this {self.role} model. {exc}")
            return False
        self.set_model(source, classifier, sanity)
        return True

    def set_model(
        self, source: ModelSource, classifier: OnnxClassifier, sanity: SanityReport | None = None
    ) -> None:
        """Make an already loaded classifier the current model (see :meth:`choose` to load and validate).

        ``sanity``: its :func:`core.sanity.check_model` report when already made; else it is made here.
        """
        if sanity is None:
            try:
                sanity = check_model(classifier)
            except InvalidModelError as exc:
                sanity = SanityReport(0.0, 0, None, None, str(exc))
        if source.kind == "file" and source not in self._files:
            self._files.append(source)
        self._source = source
        self._classifier = classifier
        self._sanity = sanity
        self.refresh()
        self.model_changed.emit(classifier)
        if sanity.warning:
            self.warning.emit(f"Warning: {sanity.warning}")
