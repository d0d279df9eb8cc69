"""Check, before the QApplication exists, that Qt can open a window here; say what to install if it cannot.

Qt's xcb platform plugin (X11, and XWayland) aborts with its own message ("Could not load the Qt platform plugin
"xcb"...") when a system library is missing; most desktop Linux installs lack a few of them (libxcb-cursor0 since
Qt 6.5). :func:`platform_problem` looks for those libraries and for a display first, so ``digit-distill`` can
print one line naming the Debian/Ubuntu packages instead. :data:`XCB_PACKAGES` is the README's ``apt`` line.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping

#: The shared libraries Qt's xcb platform plugin loads, and the Debian/Ubuntu package of each.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}
XCB_PACKAGES: tuple[str, ...] = tuple(XCB_LIBRARIES.values())
"""Every package Qt's xcb platform needs: the README's install line and what CI installs."""

_OFFSCREEN_HINT = "QT_QPA_PLATFORM=offscreen starts the app without a display"


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def platform_problem(
    environ: Mapping[str, str] | None = None,
    loads: Callable[[str], bool] = _loads,
    platform: str = sys.platform,
) -> str | None:
    """Why Qt could not open a window with this environment, in one line; ``None`` when nothing is wrong.

    Only the xcb platform is checked: it is the one chosen when ``QT_QPA_PLATFORM`` is unset outside a Wayland
    session, or when it names xcb. ``offscreen``, ``wayland`` and the others are left to Qt.
    """
    env = os.environ if environ is None else environ
    if not platform.startswith("linux"):
        return None
    chosen = env.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        if not chosen.split(";")[0].startswith("xcb"):
            return None
    elif env.get("WAYLAND_DISPLAY"):
        return None  # Qt tries its wayland plugin first there
    missing = [package for soname, package in XCB_LIBRARIES.items() if not loads(soname)]
    if missing:
        return (
            "Qt's xcb platform needs system libraries that are missing: "
            f"sudo apt-get install {' '.join(dict.fromkeys(missing))}"
        )
    if not env.get("DISPLAY"):
        return f"no display to open a window on (DISPLAY is not set): start it in a desktop session ({_OFFSCREEN_HINT})"
    return None
