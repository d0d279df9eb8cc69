"""The board emulator: a real OpenSSH sshd on 127.0.0.1 in front of a stand-in Ascend toolkit (a test double).

How the login user works (and why): sshd checks passwords against ``/etc/shadow`` when ``UsePAM no``, and the
sessions need the test's Python (numpy, onnx, onnxruntime), which lives under ``/root`` in our environments.
So the emulator, which must run as root, creates a temporary login user that is a uid-0 alias (like BSD's
``toor``): its own name ``ddemu<hex>``, its own random password in its own shadow entry and its own home inside
the emulator's temporary folder. root's password and home are never touched. sshd listens on 127.0.0.1 only,
allows only that user, and the user is deleted on stop; aliases left by a killed emulator are removed the next
time one starts (their GECOS field names the owning process).

The home holds a ``.profile`` that puts the test's Python first on PATH (the board's "system" python3 with
numpy) and the toolkit tree at ``~/Ascend/ascend-toolkit`` (the documented user install). Its ``set_env.sh``
puts the stand-in ``atc`` and ``npu-smi`` on PATH and the stand-in ``acl`` on PYTHONPATH only when sourced.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = "ssh-keygen"
USER_PREFIX = "ddemu"
GECOS_TAG = "digit-distill board emulator pid"
FOLDER_PREFIX = "digit-distill-board-"
FILES = Path(__file__).resolve().parent / "toolkit_files"
ATC_OPS = Path(__file__).resolve().parents[2] / "core" / "atc_ops.py"  # the same table the bridge checks
PYPI_ACL = '''"""acl 0.4 from PyPI (stand-in): POSIX access control lists; nothing to do with Huawei's pyACL."""
__version__ = "0.4"


def get_acl(path):
    return []
'''


class EmulatorError(RuntimeError):
    """The emulator could not start (missing sshd, not root, sshd refused its configuration)."""


@dataclass(frozen=True)
class EmulatorConfig:
    """What the emulated board looks like and which faults it shows.

    Attributes
    ----------
    soc_version
        The board's chip (``npu-smi info`` shows it; the stand-in acl refuses .om files built for another).
    om_layout
        ``"current"`` .om headers (``model_length`` set, ``length`` 0; ATC from 2023 on) or ``"legacy"`` ones.
    opset_error_code
        What the stand-in ATC prints for an opset outside an op's range: ``"E19010"`` or ``"E16002"``.
    pypi_acl
        Install the unrelated PyPI package ``acl`` in the board's system Python (importable without set_env.sh).
    atc_delay_s
        Extra seconds a successful conversion takes (to test timeouts).
    om_suffix
        ``""`` (``<output>.om``) or ``"_linux_aarch64"`` (newer CANN naming).
    acl_api
        ``"new"`` (bytes_to_ptr/ptr_to_bytes) or ``"old"`` (numpy_to_ptr/ptr_to_numpy).
    toolkit, acl, npu_smi
        Whether set_env.sh, the acl module and npu-smi are installed.
    fail_execute
        Make ``acl.mdl.execute`` fail (to test the runner's teardown on error).
    cann_version
        Version string in version.cfg / compiler/version.info.
    """

    soc_version: str = "Ascend310"
    om_layout: str = "current"
    opset_error_code: str = "E19010"
    pypi_acl: bool = False
    atc_delay_s: float = 0.0
    om_suffix: str = ""
    acl_api: str = "new"
    toolkit: bool = True
    acl: bool = True
    npu_smi: bool = True
    fail_execute: bool = False
    cann_version: str = "7.0.0"


def openssh_fingerprint(pub_line: str) -> str:
    """OpenSSH ``SHA256:...`` fingerprint of a public key line (``ssh-ed25519 AAAA... comment``)."""
    blob = base64.b64decode(pub_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def pid_running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie: a killed emulator's process, or its orphaned sshd, can
    stay a zombie for good where PID 1 does not reap orphans (as in some containers)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def remove_stale_emulators() -> None:
    """Clean up after emulators whose process no longer exists (a test run killed with SIGKILL): stop their sshd,
    delete their login user and their temporary folder."""
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(USER_PREFIX) and entry.pw_gecos.startswith(GECOS_TAG):
            try:
                pid = int(entry.pw_gecos.rsplit(" ", 1)[1])
            except ValueError:
                continue
            if pid_running(pid):
                continue
            folder = Path(entry.pw_dir).parent  # <tmp>/digit-distill-board-XXXX/home
            ours = folder.parent == Path(tempfile.gettempdir()) and folder.name.startswith(FOLDER_PREFIX)
            if ours:
                _stop_stale_sshd(folder)
            subprocess.run(["userdel", "-f", entry.pw_name], capture_output=True, check=False)
            if ours:
                shutil.rmtree(folder, ignore_errors=True)


def _stop_stale_sshd(folder: Path) -> None:
    """SIGTERM the sshd whose pid file is in ``folder``, if that process is still the sshd started with the
    configuration there (a reused pid is left alone)."""
    try:
        pid = int((folder / "sshd.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()  # sshd rewrites it: "sshd: /usr/sbin/sshd -D ..."
    except (OSError, ValueError):
        return
    if b"sshd" in cmdline and str(folder / "sshd_config").encode() in cmdline:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install_toolkit(
    toolkit: Path, config: EmulatorConfig, ledger: Path, system_site: Path | None = None
) -> None:
    """(Re)create the stand-in toolkit at ``toolkit`` (``.../Ascend/ascend-toolkit``) as ``config`` describes.

    Also usable without sshd: source ``toolkit/set_env.sh`` (or put ``latest/bin`` on PATH and
    ``latest/python/site-packages`` on PYTHONPATH) to get the stand-in atc, npu-smi and acl. ``system_site`` is
    the board's system site-packages (on PYTHONPATH in every login), where ``pypi_acl`` installs PyPI's ``acl``.
    """
    if system_site is not None:
        shutil.rmtree(system_site / "acl", ignore_errors=True)
        if config.pypi_acl:
            (system_site / "acl").mkdir(parents=True)
            (system_site / "acl" / "__init__.py").write_text(PYPI_ACL)
    shutil.rmtree(toolkit.parent, ignore_errors=True)
    if not config.toolkit:
        return
    latest = toolkit / "latest"
    site = latest / "python" / "site-packages"
    (latest / "bin").mkdir(parents=True)
    (latest / "compiler").mkdir()
    site.mkdir(parents=True)
    shebang = f"#!{sys.executable}\n"
    scripts = [("atc", "atc.py")] + ([("npu-smi", "npu_smi.py")] if config.npu_smi else [])
    for name, source in scripts:
        target = latest / "bin" / name
        target.write_text(shebang + (FILES / source).read_text())
        target.chmod(0o755)
    shutil.copy(FILES / "omformat.py", site / "emulator_omformat.py")
    shutil.copy(ATC_OPS, site / "emulator_atc_ops.py")
    if config.acl:
        (site / "acl").mkdir()
        shutil.copy(FILES / "acl.py", site / "acl" / "__init__.py")
    settings = asdict(config) | {
        "ledger": str(ledger),
        "wedge_file": str(ledger.parent / "wedge-next-execute"),
    }
    (latest / "emulator.json").write_text(json.dumps(settings, indent=2))
    (latest / "version.cfg").write_text(
        f"# version: 1.0\nruntime_running_version=[{config.cann_version}:{config.cann_version}]\n"
    )
    (latest / "compiler" / "version.info").write_text(f"Version={config.cann_version}\n")
    (toolkit / "set_env.sh").write_text(
        "# Ascend toolkit environment (board emulator stand-in)\n"
        f"export ASCEND_TOOLKIT_HOME={latest}\n"
        "export PATH=${ASCEND_TOOLKIT_HOME}/bin:$PATH\n"
        "export LD_LIBRARY_PATH=${ASCEND_TOOLKIT_HOME}/lib64:${LD_LIBRARY_PATH}\n"
        "export PYTHONPATH=${ASCEND_TOOLKIT_HOME}/python/site-packages:${PYTHONPATH}\n"
        "export ASCEND_OPP_PATH=${ASCEND_TOOLKIT_HOME}/opp\n"
    )


class BoardEmulator:
    """A running emulated Atlas board; use as a context manager or call :meth:`start` / :meth:`stop`.

    Parameters
    ----------
    config
        The board's look and injected faults; change it later with :meth:`configure`.
    """

    def __init__(self, config: EmulatorConfig | None = None):
        self.config = config or EmulatorConfig()
        self.dir: Path | None = None
        self.user = ""
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self.host = "127.0.0.1"
        self._proc: subprocess.Popen | None = None

    # ----------------------------------------------------------------------------------------------- paths
    @property
    def home(self) -> Path:
        """The login user's home (the remote side of every deploy)."""
        return self.dir / "home"

    @property
    def toolkit(self) -> Path:
        """``~/Ascend/ascend-toolkit`` on the emulated board."""
        return self.home / "Ascend" / "ascend-toolkit"

    @property
    def set_env(self) -> Path:
        """The toolkit's set_env.sh (present unless the config removes the toolkit)."""
        return self.toolkit / "set_env.sh"

    @property
    def key_file(self) -> Path:
        """Private key authorized for the login user."""
        return self.dir / "client_key"

    @property
    def host_key_fingerprint(self) -> str:
        """OpenSSH ``SHA256:...`` fingerprint of the sshd host key."""
        return openssh_fingerprint((self.dir / "host_key.pub").read_text())

    @property
    def system_site(self) -> Path:
        """The board's system site-packages (where ``pypi_acl`` puts PyPI's unrelated ``acl``)."""
        return self.dir / "system-site"

    @property
    def ledger_path(self) -> Path:
        """Where the stand-in acl records unreleased resources at each process exit."""
        return self.dir / "state" / "acl_ledger.jsonl"

    def login(self, known_hosts: str | os.PathLike, auth: str = "password", **changes):
        """An ``atlas_bridge.connection.ConnectionConfig`` for this board, as the tests and benches log in.

        Its address and login user; ``auth`` "password" (its password), "key" (:attr:`key_file`) or "agent";
        the client's ``known_hosts`` file; no ``~/.ssh/config``. ``changes`` replace any of these fields.
        """
        from atlas_bridge.connection import ConnectionConfig

        values = dict(
            host=self.host,
            port=self.port,
            user=self.user,
            auth=auth,
            password=self.password if auth == "password" else None,
            key_file=str(self.key_file) if auth == "key" else None,
            known_hosts=str(known_hosts),
            ssh_config=None,
        )
        values.update(changes)
        return ConnectionConfig(**values)

    def info(self) -> dict:
        """Connection details as plain data (what ``python -m tests.board_emulator`` prints)."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "key_file": str(self.key_file),
            "host_key_fingerprint": self.host_key_fingerprint,
            "set_env": str(self.set_env),
            "soc_version": self.config.soc_version,
        }

    def acl_ledger(self) -> list[dict]:
        """One entry per process that imported the stand-in acl: whether it finalized and what leaked."""
        if not self.ledger_path.exists():
            return []
        return [json.loads(line) for line in self.ledger_path.read_text().splitlines() if line]

    # ------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> BoardEmulator:
        """Create the user, keys and toolkit, start sshd and wait until it answers."""
        if not SSHD.exists():
            raise EmulatorError(f"{SSHD} not found: install openssh-server")
        if os.geteuid() != 0:
            raise EmulatorError(
                "the board emulator must run as root: it creates a temporary login user for the password "
                "login (CI runs the tests as root)"
            )
        remove_stale_emulators()
        self.dir = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
        try:
            self._prepare()
            self._start_sshd()
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare(self) -> None:
        (self.dir / "state").mkdir()
        self.home.mkdir()
        for name, kind in (("host_key", "ed25519"), ("client_key", "ed25519")):
            subprocess.run(
                [
                    SSH_KEYGEN,
                    "-q",
                    "-t",
                    kind,
                    "-N",
                    "",
                    "-C",
                    f"board-emulator-{name}",
                    "-f",
                    str(self.dir / name),
                ],
                check=True,
                capture_output=True,
            )
        shutil.copy(self.dir / "client_key.pub", self.dir / "authorized_keys")
        self.user = USER_PREFIX + secrets.token_hex(4)
        subprocess.run(
            [
                "useradd",
                "-o",
                "-u",
                "0",
                "-g",
                "0",
                "-M",
                "-d",
                str(self.home),
                "-s",
                "/bin/bash",
                "-c",
                f"{GECOS_TAG} {os.getpid()}",
                self.user,
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(["chpasswd"], input=f"{self.user}:{self.password}\n", text=True, check=True)
        python_dir = Path(sys.executable).parent
        self.system_site.mkdir()
        (self.home / ".profile").write_text(
            "# board emulator: the board's python3 (with numpy) comes first, with its system site-packages\n"
            f'export PATH="{python_dir}:$PATH"\n'
            f'export PYTHONPATH="{self.system_site}${{PYTHONPATH:+:$PYTHONPATH}}"\n'
        )
        self._install_toolkit()

    def _sshd_config(self) -> str:
        return "\n".join(
            [
                f"Port {self.port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {self.dir / 'host_key'}",
                f"PidFile {self.dir / 'sshd.pid'}",
                f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
                "StrictModes no",
                "UsePAM no",
                "PasswordAuthentication yes",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin yes",
                f"AllowUsers {self.user}",
                "Subsystem sftp internal-sftp",
                "PrintMotd no",
                "PrintLastLog no",
                "UseDNS no",
                "X11Forwarding no",
                "LoginGraceTime 30",
                "LogLevel VERBOSE",
                "",
            ]
        )

    def _start_sshd(self) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
        for _attempt in range(3):
            self.port = _free_port()
            config = self.dir / "sshd_config"
            config.write_text(self._sshd_config())
            log = open(self.dir / "sshd.log", "ab")  # noqa: SIM115 - kept open for the process' lifetime
            self._proc = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
            )
            log.close()
            if self._wait_ready():
                return
            self._kill_sshd()
        raise EmulatorError(f"sshd did not start; its log:\n{(self.dir / 'sshd.log').read_text()[-2000:]}")

    def _wait_ready(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    def configure(self, **changes) -> None:
        """Change the board (e.g. ``configure(acl=False)``); takes effect for the next remote command."""
        self.config = replace(self.config, **changes)
        self._install_toolkit()

    def _install_toolkit(self) -> None:
        install_toolkit(self.toolkit, self.config, self.ledger_path, self.system_site)

    def wedge_next_execute(self) -> None:
        """Make the next ``acl.mdl.execute`` on the board hang forever (one process, once): a wedged runner."""
        (self.dir / "state" / "wedge-next-execute").write_text("")

    def authorize_key(self, public_key_line: str) -> None:
        """Let another key log in (e.g. a passphrase-protected one)."""
        with open(self.dir / "authorized_keys", "a") as f:
            f.write(public_key_line.strip() + "\n")

    def session_pids(self) -> list[int]:
        """Every process the sshd runs for its clients (sessions and what they started)."""
        return _descendants(self._proc.pid) if self._proc is not None else []

    def processes(self, needle: str) -> list[tuple[int, str]]:
        """``(pid, command line)`` of the session processes whose command line contains ``needle``."""
        found = []
        for pid in self.session_pids():
            try:
                cmdline = (
                    Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                continue
            if needle in cmdline:
                found.append((pid, cmdline.strip()))
        return found

    def freeze_connections(self) -> None:
        """Stop (SIGSTOP) every session process: a link that stalls without dropping; :meth:`thaw_connections`."""
        for pid in self.session_pids():
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass

    def thaw_connections(self) -> None:
        """Resume the processes :meth:`freeze_connections` stopped."""
        for pid in self.session_pids():
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def drop_connections(self) -> None:
        """Kill every SSH session the sshd serves (a cable pulled mid-transfer); the listener stays up."""
        if self._proc is None:
            return
        for pid in reversed(_descendants(self._proc.pid)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _kill_sshd(self) -> None:
        if self._proc is None:
            return
        self.drop_connections()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def stop(self) -> None:
        """Stop sshd and its sessions, delete the login user and the temporary folder."""
        self._kill_sshd()
        if self.user:
            subprocess.run(["userdel", "-f", self.user], capture_output=True, check=False)
            self.user = ""
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> BoardEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
