"""Step 1, checking a board (or a conversion host): OS, toolkit, CANN version, NPU, python3/numpy, pyACL, disk.

One ``bash -lc`` script prints ``key=value`` lines; :func:`parse_board_report` turns them into
:class:`BoardInfo`, and :func:`require_board` / :func:`require_converter` raise a specific error saying what
to do when something the deploy needs is missing.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from atlas_bridge.errors import AclMissingError, BoardCheckError, ToolkitNotFoundError

# Where CANN installs set_env.sh (ATLAS.md section 2), most complete first; "~" is the login user's home.
SET_ENV_CANDIDATES = (
    "/usr/local/Ascend/ascend-toolkit/set_env.sh",
    "~/Ascend/ascend-toolkit/set_env.sh",
    "/usr/local/Ascend/cann/set_env.sh",
    "~/Ascend/nnrt/set_env.sh",
    "/usr/local/Ascend/nnrt/set_env.sh",
)
MIN_FREE_KB = 100 * 1024
#: The pyACL calls a deploy needs: the unrelated PyPI package also named ``acl`` (POSIX ACLs) has none of them.
ACL_API = ("init", "rt.set_device", "mdl.load_from_file")
#: The board's Python (version, numpy, pyACL), checked by one interpreter instead of three (every Python start and
#: numpy import costs time on the board's small ARM cores), after set_env.sh is sourced: the environment the runner
#: gets. Written for the board's Python 3.7.
PYTHON_CHECK_PY = f"""import sys
print("python_version=%d.%d.%d" % sys.version_info[:3])
try:
    import numpy
    print("numpy=" + numpy.__version__)
except Exception:
    print("numpy=")
try:
    import acl
except Exception as exc:
    print("acl=missing")
    print("acl_error=%s: %s" % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else ""))
    sys.exit(0)
print("acl_path=%s" % (getattr(acl, "__file__", None) or ""))
def has(dotted):
    obj = acl
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
    return callable(obj)
missing = [name for name in {ACL_API!r} if not has(name)]
print("acl=foreign" if missing else "acl=ok")
if missing:
    print("acl_error=no acl." + ", acl.".join(missing))"""
_NPU_ROW = re.compile(r"^\|\s*\d+\s+(\d{3}[A-Za-z0-9]*)\s+\|")


def remote_path_expr(path: str) -> str:
    """Shell expression for a remote path: ``~/x`` becomes ``"$HOME"/'x'``, anything else is quoted."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def board_check_script(set_env: str | None, folder: str) -> str:
    """The shell script printing the ``key=value`` report; ``set_env=None`` tries every known location."""
    candidates = [set_env] if set_env else list(SET_ENV_CANDIDATES)
    tried = " ".join(remote_path_expr(c) for c in candidates)
    return "\n".join(
        [
            'echo "os=$(uname -s)"; echo "arch=$(uname -m)"',
            '( . /etc/os-release 2>/dev/null && echo "os_name=$PRETTY_NAME" )',
            f"echo \"free_kb=$(df -Pk {remote_path_expr(folder)} 2>/dev/null | awk 'NR==2 {{print $4}}')\"",
            'echo "python3=$(command -v python3)"',
            f"for f in {tried}; do",
            '  echo "tried=$f"',
            '  if [ -f "$f" ]; then echo "set_env=$f"; . "$f" >/dev/null 2>&1; break; fi',
            "done",
            'echo "toolkit_home=${ASCEND_TOOLKIT_HOME:-}"',
            'v=""; for vf in "${ASCEND_TOOLKIT_HOME:-/nonexistent}/compiler/version.info" '
            '"${ASCEND_TOOLKIT_HOME:-/nonexistent}/version.cfg"; do',
            '  [ -z "$v" ] && [ -f "$vf" ] && v=$(grep -m1 -Eo "[0-9]+\\.[0-9]+\\.[0-9A-Za-z.]+" "$vf")',
            'done; echo "cann_version=$v"',
            'echo "atc=$(command -v atc)"',
            'if command -v npu-smi >/dev/null 2>&1; then npu-smi info 2>&1 | sed "s/^/npu|/"; fi',
            '[ -e /dev/davinci0 ] && echo "davinci=yes"',
            "python3 - <<'DD_PYTHON_CHECK' 2>/dev/null || echo acl=missing",
            PYTHON_CHECK_PY,
            "DD_PYTHON_CHECK",
            "true",
        ]
    )


@dataclass
class BoardInfo:
    """What the board check found (empty strings when absent)."""

    os: str = ""
    arch: str = ""
    os_name: str = ""
    python3: str = ""
    python_version: str = ""
    numpy: str = ""
    set_env: str = ""
    tried: list[str] = field(default_factory=list)
    toolkit_home: str = ""
    cann_version: str = ""
    atc: str = ""
    npu_lines: list[str] = field(default_factory=list)
    davinci: bool = False
    acl_ok: bool = False
    acl_foreign: bool = False
    acl_path: str = ""
    acl_error: str = ""
    free_kb: int | None = None

    @property
    def npu_name(self) -> str:
        """Chip name from ``npu-smi info`` (``310``, ``310B4``...), or ``""``."""
        for line in self.npu_lines:
            match = _NPU_ROW.match(line)
            if match:
                return match.group(1)
        return ""

    @property
    def soc_version(self) -> str:
        """``"Ascend" + npu name`` (ATLAS.md's rule), or ``""`` when npu-smi gave nothing."""
        return f"Ascend{self.npu_name}" if self.npu_name else ""

    @property
    def has_npu(self) -> bool:  # noqa: D102
        return bool(self.npu_name) or self.davinci

    def summary(self) -> str:
        """One line for the log."""
        npu = self.soc_version or ("/dev/davinci0" if self.davinci else "none")
        free = (
            f"{self.free_kb / 1024 / 1024:.1f} GiB free" if self.free_kb is not None else "free space unknown"
        )
        return (
            f"{self.os_name or self.os} {self.arch}; CANN {self.cann_version or '?'} ({self.set_env or 'no set_env.sh'}); "
            f"NPU {npu}; python3 {self.python_version or 'missing'}, numpy {self.numpy or 'missing'}; "
            f"pyACL {'ok' if self.acl_ok else 'missing'}; {free}"
        )


def parse_board_report(lines: list[str]) -> BoardInfo:
    """Turn the check script's output into :class:`BoardInfo`."""
    info = BoardInfo()
    for line in lines:
        if line.startswith("npu|"):
            info.npu_lines.append(line[4:])
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if key == "tried":
            info.tried.append(value)
        elif key == "davinci":
            info.davinci = value == "yes"
        elif key == "acl":
            info.acl_ok = value == "ok"
            info.acl_foreign = value == "foreign"
        elif key == "free_kb":
            info.free_kb = int(value) if value.isdigit() else None
        elif key in BoardInfo.__dataclass_fields__ and key not in ("npu_lines",):
            setattr(info, key, value)
    return info


def _require_common(info: BoardInfo, label: str) -> None:
    if not info.set_env:
        raise ToolkitNotFoundError(
            f"No CANN set_env.sh found on {label} (looked at: {', '.join(info.tried)})",
            "Install the CANN toolkit (or nnrt runtime) on it, or give the path of its set_env.sh",
        )
    if info.free_kb is not None and info.free_kb < MIN_FREE_KB:
        raise BoardCheckError(
            f"Only {info.free_kb // 1024} MiB free on {label}",
            "Free at least 100 MiB in the remote folder's file system",
        )


def require_board(info: BoardInfo, label: str, need_atc: bool) -> None:
    """Raise a specific :class:`BoardCheckError` if the board cannot run (and, if asked, convert) models."""
    _require_common(info, label)
    if not info.python3:
        raise BoardCheckError(
            f"python3 not found on {label}", "Install python3 on the board (apt install python3)"
        )
    if not info.numpy:
        raise BoardCheckError(
            f"numpy is not importable by python3 on {label}",
            "Install it on the board: pip3 install numpy (or apt install python3-numpy)",
        )
    if not info.has_npu:
        raise BoardCheckError(
            f"No Ascend NPU found on {label}: npu-smi shows no chip and /dev/davinci0 does not exist",
            "Check that the board's driver is installed and loaded (this must be the Atlas board, not a PC)",
        )
    if info.acl_foreign:
        raise AclMissingError(
            f"python3 on {label} imports a module named 'acl' ({info.acl_path or 'unknown path'}) that is not CANN's "
            f"pyACL ({info.acl_error}): probably the unrelated PyPI package 'acl' (POSIX ACLs)",
            f"Uninstall it on the board (pip3 uninstall acl), or check that {info.set_env} puts the toolkit's "
            "python/site-packages first on PYTHONPATH",
        )
    if not info.acl_ok:
        raise AclMissingError(
            f"pyACL (python module 'acl') is not importable on {label} after sourcing {info.set_env}"
            + (f" ({info.acl_error})" if info.acl_error else ""),
            "Install the CANN toolkit/nnrt with its Python part for this python3, or choose the right set_env.sh",
        )
    if need_atc and not info.atc:
        raise BoardCheckError(
            f"atc not found on {label} after sourcing {info.set_env}",
            "Install the CANN toolkit (with ATC) on the board, or convert on a separate x86 conversion host",
        )


def require_converter(info: BoardInfo, label: str) -> None:
    """Raise if a conversion host has no toolkit or no atc."""
    _require_common(info, label)
    if not info.atc:
        raise BoardCheckError(
            f"atc not found on conversion host {label} after sourcing {info.set_env}",
            "Install the CANN toolkit (with ATC) there, or give its set_env.sh",
        )
