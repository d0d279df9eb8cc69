"""Where digit-distill keeps its files for each user: the one home of every user folder (``platformdirs``).

========================  ==================================================  ===============================
what                      Linux (XDG variables honoured)                      override
========================  ==================================================  ===============================
MNIST                     ``~/.cache/digit-distill/mnist``                    ``DIGIT_DISTILL_DATA``, --data-dir
training runs             ``~/.local/share/digit-distill/runs``               ``DIGIT_DISTILL_RUNS``, --runs-dir
app's known_hosts         ``~/.local/share/digit-distill/known_hosts``
app settings              ``~/.config/digit-distill/settings.ini``
========================  ==================================================  ===============================

macOS and Windows get their own conventions from ``platformdirs`` (``~/Library/Caches/digit-distill``,
``%LOCALAPPDATA%/digit-distill/Cache``, ...). Every function reads the environment when called.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import PlatformDirs

APP_NAME = "digit-distill"


def _dirs() -> PlatformDirs:
    return PlatformDirs(APP_NAME, appauthor=False)


def cache_dir() -> Path:
    """The user's cache folder for the app (data that can be downloaded again)."""
    return _dirs().user_cache_path


def data_dir() -> Path:
    """The user's data folder for the app (runs, the app's own known_hosts)."""
    return _dirs().user_data_path


def config_dir() -> Path:
    """The user's configuration folder for the app."""
    return _dirs().user_config_path


def mnist_dir() -> Path:
    """Where MNIST is downloaded to and read from by default."""
    return cache_dir() / "mnist"


def runs_dir() -> Path:
    """``$DIGIT_DISTILL_RUNS``, else the user's data folder / runs."""
    if os.environ.get("DIGIT_DISTILL_RUNS"):
        return Path(os.environ["DIGIT_DISTILL_RUNS"]).expanduser()
    return data_dir() / "runs"


def known_hosts_file() -> Path:
    """The app's own known_hosts (board host keys the person trusted in the app or with the CLI)."""
    return data_dir() / "known_hosts"


def settings_file() -> Path:
    """The app's settings (an INI file written by QSettings)."""
    return config_dir() / "settings.ini"
