"""Results of the three models beside the paper's, and the paper's three measures of a distillation.

The paper ("knowledge distillation of a handwriting recognition model and its deployment on hardware")
reports a teacher MLP 784-2000-2000-10 at 98.32%, the student 784-50-50-10 trained normally at 89.68% and
distilled at T=6 at 91.63%. Its measures: (1) parameter reduction of the student against the teacher,
(2) accuracy gap of the student to the teacher, (3) gain of the distilled student over the normal one.

Our side is honest: the rows are a distilled student, its own teacher and a normally trained student with the
same recipe, settings and data (``core.comparisons``); each row names its run. Without a matching baseline
there is no gain, and the panel offers to train it. Without a distilled student nothing is compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.paper import PAPER as PAPER_NUMBERS
from core.paper import params as paper_params

if TYPE_CHECKING:  # the module itself imports PyTorch
    from app.gui.train_jobs import ResultRow, ResultsTable

ROLES = ("teacher", "student", "distilled")
ROLE_LABELS = {"teacher": "Teacher", "student": "Student (normal)", "distilled": "Student (distilled)"}
PAPER = {role: {"accuracy": PAPER_NUMBERS[role], "params": paper_params(role)} for role in ROLES}
MODEL_COLUMNS = ("Test accuracy", "Paper", "Parameters", "Paper", "ONNX size", "Latency", "Run")
MODEL_TIPS = (
    "Accuracy on the 10,000 MNIST test images after the last finished epoch",
    "The paper's reported test accuracy",
    "Trainable parameters of our model",
    "Parameters of the paper's MLP (784-2000-2000-10 teacher, 784-50-50-10 student)",
    "Size of the exported ONNX file (opset 11, float32)",
    "Median time of one single-image forward pass in onnxruntime on this computer (1 thread)",
    "The run folder the row comes from",
)
MEASURES = (
    ("reduction", "Parameter reduction (student vs teacher)"),
    ("gap_student", "Accuracy gap to the teacher: normal student"),
    ("gap_distilled", "Accuracy gap to the teacher: distilled student"),
    ("gain", "Gain of distillation (distilled − normal)"),
)


def compute_measures(
    accuracy: dict[str, float | None], params: dict[str, int | None]
) -> dict[str, float | None]:
    """The paper's three measures from per-role accuracies (fractions) and parameter counts.

    Returns
    -------
    dict
        ``reduction``: 1 - student/teacher parameters (fraction); ``ratio``: teacher/student parameters;
        ``gap_student`` / ``gap_distilled``: teacher minus student accuracy (fraction);
        ``gain``: distilled minus normal student accuracy (fraction). ``None`` where an input is missing.
    """
    teacher_acc, student_acc, distilled_acc = (accuracy.get(r) for r in ROLES)
    teacher_params = params.get("teacher")
    student_params = params.get("distilled") or params.get("student")
    out: dict[str, float | None] = dict.fromkeys(
        ("reduction", "ratio", "gap_student", "gap_distilled", "gain")
    )
    if teacher_params and student_params:
        out["reduction"] = 1.0 - student_params / teacher_params
        out["ratio"] = teacher_params / student_params
    if teacher_acc is not None and student_acc is not None:
        out["gap_student"] = teacher_acc - student_acc
    if teacher_acc is not None and distilled_acc is not None:
        out["gap_distilled"] = teacher_acc - distilled_acc
    if distilled_acc is not None and student_acc is not None:
        out["gain"] = distilled_acc - student_acc
    return out


PAPER_MEASURES = compute_measures({r: PAPER_NUMBERS[r] for r in ROLES}, {r: paper_params(r) for r in ROLES})


def format_bytes(n: int | None) -> str:
    """``1536`` -> ``"1.5 kB"`` (decimal units, as file managers show)."""
    if n is None:
        return "—"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def format_measure(key: str, value: float | None, ratio: float | None = None) -> str:
    """Human form of one measure: a percentage for the reduction, percentage points for the others."""
    if value is None:
        return "—"
    if key == "reduction":
        return f"{value:.2%}" + (f"  ({ratio:.0f}× fewer)" if ratio else "")
    sign = "+" if key == "gain" and value >= 0 else ""
    return f"{sign}{value * 100:.2f} pp"


def _item(text: str, tip: str = "", align=Qt.AlignmentFlag.AlignRight) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setTextAlignment(align | Qt.AlignmentFlag.AlignVCenter)
    if tip:
        item.setToolTip(tip)
    return item


def _table(rows: int, columns: tuple[str, ...], row_labels: list[str]) -> QTableWidget:
    table = QTableWidget(rows, len(columns))
    table.setHorizontalHeaderLabels(list(columns))
    table.setVerticalHeaderLabels(row_labels)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setAlternatingRowColors(True)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the last column elides
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    return table


def _fit_height(table: QTableWidget) -> None:
    """Make the table exactly as tall as its rows (no empty band below them)."""
    table.resizeRowsToContents()
    height = table.horizontalHeader().sizeHint().height() + table.verticalHeader().length()
    table.setFixedHeight(height + 2 * table.frameWidth())


class ResultsPanel(QWidget):
    """Table of teacher / normal student / distilled student against the paper, plus the three measures.

    Signals
    -------
    send_to_draw(object, object)
        ``(teacher_onnx: Path | None, student_onnx: Path | None)`` when "Use in Draw tab" is pressed.
    """

    send_to_draw = Signal(object, object)
    train_baseline = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._rows: dict[str, ResultRow] = {}
        self._compared = False
        self._baseline_for: str | None = None
        self.models = _table(len(ROLES), MODEL_COLUMNS, [ROLE_LABELS[r] for r in ROLES])
        for col, tip in enumerate(MODEL_TIPS):
            header = self.models.horizontalHeaderItem(col)
            if header is not None:
                header.setToolTip(tip)
        self.models.itemSelectionChanged.connect(self._update_send_button)
        self.measures = _table(len(MEASURES), ("Ours", "Paper"), [label for _, label in MEASURES])
        self.measures.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.measures.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.send_button = QPushButton("Use in Draw tab")
        self.send_button.setToolTip(
            "Load the teacher and the selected student (the distilled one if none is selected) into the Draw tab"
        )
        self.send_button.clicked.connect(self._send)
        self.baseline_button = QPushButton("Train matching student")
        self.baseline_button.setToolTip(
            "Train the student normally with the distilled student's recipe, settings and data, so the gain "
            "of distillation can be measured"
        )
        self.baseline_button.clicked.connect(self._train_baseline)
        self.comparison_note = QLabel()
        self.comparison_note.setWordWrap(True)
        self.comparison_note.setVisible(False)
        # One line, not wrapped: a wrapped label in a splitter pane asks for too little height when the window is
        # small, and then draws over the table above it.
        self.note = QLabel("Paper: MLP 784-2000-2000-10 → 784-50-50-10, T = 6")
        self.note.setToolTip(
            "The paper's teacher (MLP 784-2000-2000-10) and student (784-50-50-10), distilled at T = 6"
        )
        self.note.setObjectName("hint")
        # It takes the room the buttons leave (cut short in a narrow window; the tooltip has it whole).
        self.note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        buttons = QHBoxLayout()
        buttons.addWidget(self.note, 1)
        buttons.addWidget(self.baseline_button)
        buttons.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.models)
        layout.addWidget(self.comparison_note)
        layout.addWidget(self.measures)
        layout.addLayout(buttons)
        layout.addStretch(1)
        self._refresh()

    # -- data ----------------------------------------------------------------------------------------
    def set_table(self, table: ResultsTable) -> None:
        """Show a comparison from :func:`app.gui.train_jobs.latest_results`."""
        self._rows = {row["role"]: row.copy() for row in table["rows"]}
        self._compared = table["compared"]
        self._baseline_for = table["baseline_for"]
        self.comparison_note.setText(table["note"])
        self.comparison_note.setVisible(bool(table["note"] and table["rows"]))
        self._refresh()

    def compared(self) -> bool:
        """True when the rows are a distilled student with its own teacher (and matching baseline)."""
        return self._compared

    def row(self, role: str) -> ResultRow | None:
        """The row shown for ``role``, if any."""
        return self._rows.get(role)

    def cell_text(self, role: str, column: str) -> str:
        """Text of a cell of the models table (``column`` as in :data:`MODEL_COLUMNS`, first match)."""
        item = self.models.item(ROLES.index(role), MODEL_COLUMNS.index(column))
        return item.text() if item else ""

    def measure_text(self, key: str, paper: bool = False) -> str:
        """Text of one measure (ours, or the paper's)."""
        keys = [k for k, _ in MEASURES]
        item = self.measures.item(keys.index(key), 1 if paper else 0)
        return item.text() if item else ""

    # -- view ----------------------------------------------------------------------------------------
    def _refresh(self) -> None:
        for r, role in enumerate(ROLES):
            row = self._rows.get(role)
            paper = PAPER[role]
            acc = row.get("test_accuracy") if row else None
            latency = row.get("latency_ms") if row else None
            cells = [
                _item(f"{acc:.2%}" if acc is not None else "—"),
                _item(f"{paper['accuracy']:.2%}"),
                _item(f"{row['params']:,}" if row and row.get("params") else "—"),
                _item(f"{paper['params']:,}"),
                _item(
                    format_bytes(row.get("onnx_bytes")) if row else "—",
                    row.get("onnx_path") or "" if row else "",
                ),
                _item(f"{latency:.3f} ms" if latency is not None else "—"),
                _item(
                    self._run_text(role, row),
                    row.get("run_dir", "") if row else "",
                    Qt.AlignmentFlag.AlignLeft,
                ),
            ]
            for c, item in enumerate(cells):
                self.models.setItem(r, c, item)
        params = {role: (row or {}).get("params") for role, row in self._rows.items()}
        # Accuracies are compared only around a distilled student, with its own teacher and matching baseline.
        accuracy = (
            {role: (row or {}).get("test_accuracy") for role, row in self._rows.items()}
            if self._compared
            else {}
        )
        ours = compute_measures(accuracy, params)
        for r, (key, _) in enumerate(MEASURES):
            self.measures.setItem(r, 0, _item(format_measure(key, ours[key], ours["ratio"])))
            self.measures.setItem(
                r, 1, _item(format_measure(key, PAPER_MEASURES[key], PAPER_MEASURES["ratio"]))
            )
        for table in (self.models, self.measures):
            _fit_height(table)
        self._update_send_button()

    def _run_text(self, role: str, row: ResultRow | None) -> str:
        if not row:
            if role == "student" and self._baseline_for:
                return "no matching baseline: train one with the same settings"
            return "no complete run yet"
        text = f"{row.get('name', '')}  ({row.get('epochs_done', 0)}/{row.get('epochs', 0)} epochs"
        if kd := row.get("kd"):
            text += f", T={kd['temperature']:g}, α={kd['alpha']:g}"
        return text + ")"

    def _train_baseline(self) -> None:
        if self._baseline_for:
            self.train_baseline.emit(self._baseline_for)

    def _onnx(self, role: str) -> Path | None:
        row = self._rows.get(role)
        onnx = row.get("onnx_path") if row else None
        return Path(onnx) if onnx else None

    def models_to_send(self) -> tuple[Path | None, Path | None]:
        """``(teacher ONNX, student ONNX)``: the selected student row, else the distilled, else the normal one."""
        selected = self.models.selectionModel().selectedRows()
        chosen = ROLES[selected[0].row()] if selected else None
        if chosen in ("student", "distilled") and self._onnx(chosen):
            student = self._onnx(chosen)
        else:
            student = self._onnx("distilled") or self._onnx("student")
        return self._onnx("teacher"), student

    def _update_send_button(self) -> None:
        teacher, student = self.models_to_send()
        self.send_button.setEnabled(teacher is not None or student is not None)
        self.baseline_button.setVisible(self._baseline_for is not None)

    def _send(self) -> None:
        teacher, student = self.models_to_send()
        if teacher or student:
            self.send_to_draw.emit(teacher, student)
