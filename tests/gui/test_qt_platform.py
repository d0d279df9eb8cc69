"""Before the QApplication: missing xcb libraries or display give one line naming the fix, not Qt's abort."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from app.gui.qt_platform import XCB_LIBRARIES, XCB_PACKAGES, platform_problem
from tests.conftest import ROOT


def test_readme_install_line_is_the_xcb_packages_and_ci_reads_it():
    readme = (ROOT / "README.md").read_text()
    (line,) = re.findall(r"^sudo apt-get install -y (.*)$", readme, flags=re.M)
    assert tuple(line.split()) == XCB_PACKAGES
    assert "sed -n 's/^sudo apt-get install -y //p' README.md" in (ROOT / ".ci" / "run").read_text()


def test_missing_libraries_are_named_by_package():
    absent = {"libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1"}
    problem = platform_problem({"DISPLAY": ":0"}, loads=lambda soname: soname not in absent, platform="linux")
    assert problem.endswith("sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1")
    assert "\n" not in problem


def test_xcb_chosen_explicitly_is_checked_too():
    problem = platform_problem(
        {"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0"}, loads=lambda s: False
    )
    assert all(package in problem for package in XCB_PACKAGES)


def test_no_display_suggests_offscreen():
    problem = platform_problem({}, loads=lambda soname: soname in XCB_LIBRARIES, platform="linux")
    assert "DISPLAY" in problem and "QT_QPA_PLATFORM=offscreen" in problem


def test_other_platforms_are_left_to_qt():
    def never(soname):
        raise AssertionError("no library should be looked for")

    assert platform_problem({"QT_QPA_PLATFORM": "offscreen"}, loads=never, platform="linux") is None
    assert platform_problem({"QT_QPA_PLATFORM": "wayland"}, loads=never, platform="linux") is None
    assert platform_problem({"WAYLAND_DISPLAY": "wayland-0"}, loads=never, platform="linux") is None
    assert platform_problem({}, loads=never, platform="darwin") is None
    assert platform_problem({"DISPLAY": ":0"}, loads=lambda soname: True, platform="linux") is None


def test_the_app_prints_one_line_instead_of_qts_abort(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(QT_QPA_PLATFORM="xcb", HOME=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "app"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("digit-distill: "), done.stderr
    assert "apt-get install" in lines[0] or "QT_QPA_PLATFORM=offscreen" in lines[0]
