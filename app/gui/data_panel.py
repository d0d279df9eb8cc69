"""Where MNIST lives: the folder shown and settable, and a download dialog with progress when it is missing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.settings import app_settings, read_path
from app.gui.workers import JobFailure, JobRunner, TaskState
from core.data import DEFAULT_MIRRORS, download_mnist, find_mnist_files, locate_data
from core.progress import is_transfer

DATA_DIR_KEY = "data/dir"
LAST_FOLDER_KEY = "folders/last_data"


def missing_files(folder: Path) -> list[str]:
    """Names of the MNIST files not found in ``folder`` (gzip or raw)."""
    return [name for name, path in find_mnist_files(folder).items() if path is None]


class DownloadDialog(QDialog):
    """Downloads the missing MNIST files into a folder, with a progress bar and a Cancel button.

    The download runs in a :class:`~app.gui.workers.JobRunner`; ``accept()`` is called when it succeeds,
    and a failure is shown in the dialog (and emitted as ``error_occurred``) with the reason.
    """

    error_occurred = Signal(str)

    def __init__(self, dest: Path, parent: QWidget | None = None, mirrors: Sequence[str] = DEFAULT_MIRRORS):
        super().__init__(parent)
        self.setWindowTitle("Download MNIST")
        self.setMinimumWidth(520)
        self.dest = Path(dest)
        self.mirrors = tuple(mirrors)
        self.error: str | None = None
        self.info = QLabel(
            f"The four MNIST files (about 11 MB) will be downloaded into\n{self.dest}\n"
            "and checked against their official checksums."
        )
        self.info.setWordWrap(True)
        self.file_label = QLabel("Waiting to start…")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        layout.addWidget(self.file_label)
        layout.addWidget(self.bar)
        layout.addWidget(self.buttons)

        self.runner = JobRunner(self)
        self.runner.batches.connect(self._on_transfer)
        self.runner.succeeded.connect(self._done)
        self.runner.failed.connect(self._failed)

    def start(self) -> None:
        """Begin the download (the dialog should be shown, e.g. with ``open()``)."""
        dest, mirrors = self.dest, self.mirrors

        def job(state: TaskState) -> list[str]:
            return [str(p) for p in download_mnist(dest, mirrors=mirrors, progress=state)]

        self.runner.start("Download MNIST", job)

    def _on_transfer(self, batches: list[dict[str, Any]]) -> None:
        """The latest of the download's ``on_batch`` reports (:func:`core.progress.transfer`) on the bar and label."""
        last = batches[-1] if batches else None
        if last is None or not is_transfer(last):
            return
        done, total = last["done"], last["total"]
        self.bar.setValue(int(1000 * done / total) if total else 0)
        self.file_label.setText(f"{last['file']}: {done / 1e6:.1f} of {total / 1e6:.1f} MB")

    def reject(self) -> None:
        """Cancel: stop the download (already verified files stay), then close."""
        if self.runner.is_running():
            self.file_label.setText("Cancelling…")
            self.runner.stop_and_wait(10_000)
        super().reject()

    def _done(self, written: list) -> None:
        self.bar.setValue(1000)
        self.accept()

    def _failed(self, error: JobFailure) -> None:
        if error["kind"] == "DownloadCancelled":
            return
        self.error = error["message"]
        self.file_label.setText("The download failed.")
        self.info.setText(error["message"])
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons.setStandardButtons(QDialogButtonBox.StandardButton.Close)
        self.error_occurred.emit(error["message"])


class DataPanel(QGroupBox):
    """Shows the MNIST folder and whether the files are there; lets the person change it or download.

    Signals
    -------
    data_dir_changed(object)
        The new folder (a ``Path``) after the person chose another one or a download completed.
    error_occurred(str)
        A readable message (download failure).
    """

    data_dir_changed = Signal(object)
    error_occurred = Signal(str)

    def __init__(self, parent: QWidget | None = None, mirrors: Sequence[str] = DEFAULT_MIRRORS):
        super().__init__("MNIST data", parent)
        self.mirrors = tuple(mirrors)
        self._explicit: Path | None = read_path(app_settings(), DATA_DIR_KEY)
        self.dialog: DownloadDialog | None = None
        self.path_label = QLabel()
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.path_label.setWordWrap(True)
        self.state_label = QLabel()
        self.choose_button = QPushButton("Choose folder…")
        self.choose_button.setToolTip("Use MNIST files (gzip or raw IDX) from another folder")
        self.choose_button.clicked.connect(self.choose_folder)
        self.download_button = QPushButton("Download…")
        self.download_button.setToolTip("Download the four MNIST files (about 11 MB) into the folder shown")
        self.download_button.clicked.connect(self.start_download)

        buttons = QHBoxLayout()
        buttons.addWidget(self.state_label, 1)
        buttons.addWidget(self.choose_button)
        buttons.addWidget(self.download_button)
        layout = QGridLayout(self)
        layout.addWidget(self.path_label, 0, 0)
        layout.addLayout(buttons, 1, 0)
        self.refresh()

    def data_dir(self) -> Path:
        """The folder training reads: the one chosen here, else ``$DIGIT_DISTILL_DATA``, else the cache."""
        return locate_data(self._explicit).path

    def is_ready(self) -> bool:
        """True when all four files are present."""
        return not missing_files(self.data_dir())

    def set_data_dir(self, folder: Path | None) -> None:
        """Use ``folder`` (None: back to the default location) and remember it."""
        self._explicit = Path(folder) if folder else None
        settings = app_settings()
        if self._explicit is None:
            settings.remove(DATA_DIR_KEY)
        else:
            settings.setValue(DATA_DIR_KEY, str(self._explicit))
            settings.setValue(LAST_FOLDER_KEY, str(self._explicit))
        self.refresh()
        self.data_dir_changed.emit(self.data_dir())

    def refresh(self) -> None:
        """Re-check the folder and update the labels."""
        location = locate_data(self._explicit)
        shown = str(location.path) if self._explicit else location.describe()
        self.path_label.setText(shown)
        self.path_label.setToolTip(str(location.path))
        missing = missing_files(location.path)
        if not missing:
            self.state_label.setText("<span style='color:#2a7d2a'>✔ all four files found</span>")
        else:
            self.state_label.setText(
                f"<span style='color:#b03030'>✘ {len(missing)} of 4 files missing</span>"
            )
        self.state_label.setToolTip("\n".join(missing) if missing else "")

    def choose_folder(self) -> None:
        """Ask for a folder with a file dialog."""
        start = read_path(app_settings(), LAST_FOLDER_KEY) or self.data_dir()
        folder = QFileDialog.getExistingDirectory(self, "Folder with the MNIST files", str(start))
        if folder:
            self.set_data_dir(Path(folder))

    def start_download(self) -> DownloadDialog:
        """Open the download dialog for the folder shown and start downloading."""
        self.dialog = DownloadDialog(self.data_dir(), self, mirrors=self.mirrors)
        self.dialog.error_occurred.connect(self.error_occurred)
        self.dialog.finished.connect(self._download_closed)
        self.dialog.open()
        self.dialog.start()
        return self.dialog

    def offer(self, message: str) -> QMessageBox:
        """Tell the person the data is missing and offer to download it or to choose a folder."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("MNIST not found")
        box.setText("Training needs the MNIST data set, which is not in the folder shown.")
        box.setInformativeText(message)
        download = box.addButton("Download…", QMessageBox.ButtonRole.AcceptRole)
        choose = box.addButton("Choose folder…", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)

        def clicked(button) -> None:
            if button is download:
                self.start_download()
            elif button is choose:
                self.choose_folder()

        box.buttonClicked.connect(clicked)
        box.open()
        return box

    def shutdown(self) -> None:
        """Stop a running download (window closing)."""
        if self.dialog is not None and self.dialog.runner.is_running():
            self.dialog.runner.stop_and_wait(10_000)

    def _download_closed(self, result: int) -> None:
        self.refresh()
        if result == QDialog.DialogCode.Accepted:
            self.data_dir_changed.emit(self.data_dir())
