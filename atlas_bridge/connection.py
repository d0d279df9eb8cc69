"""One SSH connection to a board (paramiko): host-key trust, streamed commands with timeouts, atomic SFTP uploads.

Use as a context manager::

    with BoardConnection(ConnectionConfig(host="192.168.1.2", user="HwHiAiUser", auth="password",
                                          password=pw), trust=callback) as conn:
        conn.bash(". /usr/local/Ascend/ascend-toolkit/set_env.sh && atc --help", on_line=print)

The password and the key's passphrase live only in this object's memory (never written anywhere, excluded from
``repr``/``to_dict``). Everything a board prints is made inert (:func:`atlas_bridge.text.inert`) before a caller
sees it. Long remote commands can be tracked by their PID so that a cancel or a timeout ends them on the board
(:meth:`BoardConnection.run` with ``track_pid``), and uploads fail with :class:`UploadStalledError` when no byte
moves for ``stall_timeout`` seconds.

Kept in one module: one class over one paramiko transport, whose methods share its private state.
"""

from __future__ import annotations

import getpass
import io
import logging
import os
import posixpath
import secrets
import shlex
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import paramiko

from atlas_bridge.errors import (
    AuthenticationError,
    BridgeError,
    CancelledError,
    ConnectError,
    ConnectionLostError,
    HostKeyChangedError,
    KeyPassphraseError,
    RemoteCommandError,
    RemoteTimeoutError,
    UploadStalledError,
)
from atlas_bridge.hostkeys import (
    TrustCallback,
    TrustOnConfirmPolicy,
    app_known_hosts_path,
    fingerprint,
    known_hosts_name,
)
from atlas_bridge.text import inert
from core import validation as fields

LineCallback = Callable[[str], None]
StopCheck = Callable[[], bool]
AUTH_METHODS = ("key", "agent", "password")
PID_MARKER = "__DIGIT_DISTILL_PID__ "
UPLOAD_CHUNK = 32768
# paramiko logs a failed handshake with a traceback on stderr; our typed errors say it in one line instead.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False


@dataclass
class ConnectionConfig:
    """Where and how to log in.

    Attributes
    ----------
    host
        Host name, address or a ``~/.ssh/config`` alias (its HostName, Port, User, IdentityFile are honoured).
    port, user
        ``None``: from ``~/.ssh/config``, else 22 and the local user name.
    auth
        ``"key"`` (``key_file``, the config's IdentityFile or the default keys), ``"agent"`` or ``"password"``.
    key_file
        Private key file for ``auth="key"``.
    password
        For ``auth="password"``; memory only.
    passphrase
        The private key's passphrase for ``auth="key"`` (an encrypted key without it fails with
        :class:`KeyPassphraseError`, so the app can ask); memory only.
    connect_timeout, command_timeout
        Seconds for the TCP connect + handshake + login, and the default for each remote command/transfer.
    keepalive_s
        SSH keepalive interval (0 disables).
    ssh_config
        The OpenSSH client config to read (``None`` disables).
    known_hosts
        The app's known_hosts file (``None``: :func:`app_known_hosts_path`).
    """

    host: str
    port: int | None = None
    user: str | None = None
    auth: str = "key"
    key_file: str | None = None
    password: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)
    connect_timeout: float = 15.0
    command_timeout: float = 120.0
    keepalive_s: int = 15
    ssh_config: str | None = "~/.ssh/config"
    known_hosts: str | None = None

    def __post_init__(self) -> None:
        if self.auth not in AUTH_METHODS:
            raise ValueError(f"auth must be one of {AUTH_METHODS}, not {self.auth!r}")
        self.port = fields.PORT.check_optional(self.port)
        self.connect_timeout = fields.CONNECT_TIMEOUT.check(self.connect_timeout)
        self.command_timeout = fields.COMMAND_TIMEOUT.check(self.command_timeout)
        self.keepalive_s = fields.KEEPALIVE.check(self.keepalive_s)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for saving settings: everything except the password and the passphrase."""
        d = asdict(self)
        d.pop("password")
        d.pop("passphrase")
        return d


@dataclass
class CommandResult:
    """Exit status and output lines (stdout and stderr merged, in order) of a remote command."""

    exit_status: int
    lines: list[str]

    @property
    def text(self) -> str:  # noqa: D102
        return "\n".join(self.lines)

    def tail(self, n: int = 30) -> str:
        """The last ``n`` lines."""
        return "\n".join(self.lines[-n:])


@dataclass(frozen=True)
class Endpoint:
    """The resolved login target after reading ``~/.ssh/config``."""

    hostname: str
    port: int
    user: str
    key_file: str | None


def resolve_endpoint(config: ConnectionConfig) -> Endpoint:
    """Apply ``~/.ssh/config`` (HostName, Port, User, IdentityFile) to ``config``; explicit values win."""
    found: dict[str, Any] = {}
    if config.ssh_config:
        path = Path(os.path.expanduser(config.ssh_config))
        if path.is_file():
            found = paramiko.SSHConfig.from_path(str(path)).lookup(config.host)
    identity = (found.get("identityfile") or [None])[0]
    key_file = config.key_file or identity
    return Endpoint(
        hostname=found.get("hostname", config.host),
        port=int(config.port or found.get("port", 22)),
        user=config.user or found.get("user") or getpass.getuser(),
        key_file=os.path.expanduser(key_file) if key_file else None,
    )


class BoardConnection:
    """An SSH + SFTP session to one board.

    Parameters
    ----------
    config
        Where and how to log in.
    trust
        Asked to confirm an unknown host key's fingerprint (``None``: unknown keys are rejected).
    """

    def __init__(self, config: ConnectionConfig, trust: TrustCallback | None = None):
        self.config = config
        self.trust = trust
        self.endpoint = resolve_endpoint(config)
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._home: str | None = None

    @property
    def label(self) -> str:
        """``user@host:port`` for messages."""
        e = self.endpoint
        return f"{e.user}@{e.hostname}:{e.port}"

    # ------------------------------------------------------------------------------------------ connect
    def connect(self) -> BoardConnection:
        """Open the connection; raise a typed :class:`~atlas_bridge.errors.BridgeError` saying what to do."""
        cfg, e = self.config, self.endpoint
        client = paramiko.SSHClient()
        client.load_system_host_keys()
        store = Path(cfg.known_hosts) if cfg.known_hosts else app_known_hosts_path()
        if store.is_file():
            client.get_host_keys().load(str(store))
        client.set_missing_host_key_policy(TrustOnConfirmPolicy(self.trust, store))
        if cfg.auth == "password" and not cfg.password:
            raise AuthenticationError(
                "Password login chosen but no password given", "Enter the board's password"
            )
        pkey = self._load_key(e.key_file) if cfg.auth == "key" and e.key_file else None
        sock = self._open_socket()
        kwargs: dict[str, Any] = dict(
            hostname=e.hostname,
            port=e.port,
            username=e.user,
            sock=sock,
            timeout=cfg.connect_timeout,
            banner_timeout=cfg.connect_timeout,
            auth_timeout=cfg.connect_timeout,
            allow_agent=cfg.auth == "agent",
            look_for_keys=cfg.auth == "key" and e.key_file is None,
        )
        if cfg.auth == "password":
            kwargs["password"] = cfg.password
        elif cfg.auth == "key":
            kwargs["pkey"] = pkey
            kwargs["passphrase"] = cfg.passphrase
        started = time.monotonic()
        try:
            client.connect(**kwargs)
        except BridgeError:
            client.close()
            raise
        except BaseException as exc:
            client.close()
            timed_out = time.monotonic() - started >= 0.9 * cfg.connect_timeout
            raise self._connect_error(exc, timed_out) from exc
        self._client = client
        if cfg.keepalive_s:
            self.transport.set_keepalive(cfg.keepalive_s)
        return self

    def _load_key(self, path: str) -> paramiko.PKey:
        """The private key file, decrypted with the passphrase; a typed error when that is missing or wrong."""
        try:
            secret = self.config.passphrase.encode("utf-8") if self.config.passphrase else None
            # The stubs say str; paramiko hands it to cryptography's loaders, which need bytes.
            return paramiko.PKey.from_path(path, password=secret)  # type: ignore[arg-type]
        except paramiko.PasswordRequiredException:
            raise KeyPassphraseError(path, wrong=False) from None
        except (
            TypeError
        ) as exc:  # cryptography's loader: "Key is password-protected, but password was not provided"
            if "password" in str(exc).lower() and not self.config.passphrase:
                raise KeyPassphraseError(path, wrong=False) from None
            raise
        except FileNotFoundError:
            raise AuthenticationError(
                f"The key file {path} does not exist", "Choose the private key file"
            ) from None
        except (paramiko.SSHException, ValueError, OSError) as exc:
            if self.config.passphrase:
                raise KeyPassphraseError(path, wrong=True) from None
            raise AuthenticationError(
                f"{path} is not a private key paramiko can read ({exc})",
                "Choose the private key file (not the .pub)",
            ) from None

    def _open_socket(self) -> socket.socket:
        """TCP connect, then check that the peer greets like an SSH server before paramiko starts."""
        e, timeout = self.endpoint, self.config.connect_timeout
        where = f"{e.hostname}:{e.port}"
        try:
            sock = socket.create_connection((e.hostname, e.port), timeout=timeout)
        except BaseException as exc:
            raise self._connect_error(exc, isinstance(exc, (socket.timeout, TimeoutError))) from None
        hint = "Check the port: SSH usually listens on 22 (is this the board's SSH port?)"
        try:
            sock.settimeout(timeout)
            first = b""
            deadline = time.monotonic() + timeout
            while b"\n" not in first and len(first) < 255 and time.monotonic() < deadline:
                peeked = sock.recv(256, socket.MSG_PEEK)
                if not peeked or peeked == first:
                    if not peeked:
                        break
                    time.sleep(0.02)
                first = peeked
        except TimeoutError:
            sock.close()
            raise ConnectError(
                f"{where} accepted the connection but sent no SSH greeting within {timeout:g} s",
                hint + ", or raise the connect timeout if the board is slow",
            ) from None
        except OSError as exc:
            sock.close()
            raise ConnectError(f"{where} dropped the connection before greeting ({exc})", hint) from None
        lines = first.split(b"\n")
        if not first:
            sock.close()
            raise ConnectError(f"{where} closed the connection without an SSH greeting", hint)
        if not any(line.startswith(b"SSH-") for line in lines) and (
            b"\n" in first or not b"SSH-".startswith(first[:4])
        ):
            sock.close()
            shown = inert(lines[0].decode("utf-8", "replace").strip())[:80]
            raise ConnectError(f"{where} is not an SSH server: it answered {shown!r}", hint)
        return sock

    def _connect_error(self, exc: BaseException, timed_out: bool = False) -> BaseException:
        where = f"{self.endpoint.hostname}:{self.endpoint.port}"
        if isinstance(exc, paramiko.BadHostKeyException):
            return HostKeyChangedError(
                known_hosts_name(self.endpoint.hostname, self.endpoint.port),
                fingerprint(exc.key),
                fingerprint(exc.expected_key),
                str(Path(self.config.known_hosts) if self.config.known_hosts else app_known_hosts_path()),
            )
        if isinstance(exc, paramiko.PasswordRequiredException):
            return KeyPassphraseError(self.endpoint.key_file or "your default SSH key", wrong=False)
        if isinstance(exc, paramiko.BadAuthenticationType):
            return AuthenticationError(
                f"{self.label} does not accept this login method (it allows: {', '.join(exc.allowed_types)})",
                "Choose one of the methods the board allows",
            )
        if isinstance(exc, paramiko.AuthenticationException) or (
            isinstance(exc, paramiko.SSHException) and "no authentication methods" in str(exc).lower()
        ):
            how = {
                "password": "Check the user name and password (Atlas 200 DK default: HwHiAiUser / Mind@123)",
                "key": "Check the key file and that its public key is in the board's ~/.ssh/authorized_keys",
                "agent": "Check that ssh-agent holds a key authorized on the board (ssh-add -l)",
            }[self.config.auth]
            return AuthenticationError(f"Login to {self.label} failed ({inert(str(exc))})", how)
        if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError) or isinstance(
            exc, ConnectionRefusedError
        ):
            return ConnectError(
                f"Connection to {where} refused",
                "Check that the board is powered and booted, that sshd runs on it and that the port is right "
                "(Atlas 200 DK: 192.168.1.2 over USB, 192.168.0.2 over Ethernet)",
            )
        if isinstance(exc, socket.gaierror):
            return ConnectError(
                f"Unknown host name {self.endpoint.hostname!r}", "Check the host name or address"
            )
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return ConnectError(
                f"Connecting to {where} timed out after {self.config.connect_timeout:g} s",
                "Check the cable/network and the board's address, or raise the connect timeout",
            )
        handshake = ("banner", "no existing session", "negotiation", "protocol")
        stalled = timed_out and isinstance(exc, (paramiko.SSHException, EOFError, OSError))
        if stalled:
            return ConnectError(
                f"{where} did not complete the SSH handshake within {self.config.connect_timeout:g} s",
                "Check that this is the board's SSH port and that sshd is not stuck, or raise the connect timeout",
            )
        if isinstance(exc, paramiko.SSHException) and any(w in str(exc).lower() for w in handshake):
            return ConnectError(
                f"The SSH handshake with {where} failed: {inert(str(exc))[:120]}",
                "Check that this is the board's SSH port (usually 22) and that sshd runs there",
            )
        if isinstance(exc, (paramiko.SSHException, OSError, EOFError)):
            return ConnectError(
                f"SSH connection to {where} failed: {inert(str(exc))}", "Check the address, port and network"
            )
        return exc

    def close(self) -> None:
        """Close SFTP and SSH (safe to call twice)."""
        sftp, client, self._sftp, self._client = self._sftp, self._client, None, None
        for resource in (sftp, client):
            if resource is not None:
                try:
                    resource.close()
                except (paramiko.SSHException, OSError, EOFError):
                    pass  # the connection is already gone: nothing left to close politely

    def __enter__(self) -> BoardConnection:
        return self.connect() if self._client is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def client(self) -> paramiko.SSHClient:
        """The connected paramiko client."""
        if self._client is None:
            raise ConnectionLostError(f"Not connected to {self.label}", "Connect first")
        return self._client

    @property
    def transport(self) -> paramiko.Transport:
        """The connected client's transport."""
        transport = self.client.get_transport()
        if transport is None:
            raise ConnectionLostError(f"Not connected to {self.label}", "Connect first")
        return transport

    def _alive(self) -> bool:
        transport = self._client.get_transport() if self._client is not None else None
        return transport is not None and transport.is_active()

    def _lost(self, what: str, exc: BaseException | None = None) -> ConnectionLostError:
        detail = f": {exc}" if exc else ""
        return ConnectionLostError(
            f"The connection to {self.label} dropped during {what}{detail}",
            "Check the cable/network and the board, then run the deploy again (nothing half-written is used)",
        )

    # ------------------------------------------------------------------------------------------ commands
    def run(
        self,
        command: str,
        on_line: LineCallback | None = None,
        timeout: float | None = None,
        should_stop: StopCheck | None = None,
        track_pid: bool = False,
    ) -> CommandResult:
        """Run ``command`` with the login shell's ``-c``; stream merged output lines (made inert) to ``on_line``.

        Raises :class:`RemoteTimeoutError` after ``timeout`` seconds (default ``command_timeout``),
        :class:`CancelledError` when ``should_stop()`` turns true and :class:`ConnectionLostError` if the connection
        drops; a non-zero exit status is returned, not raised. With ``track_pid`` the command must first print
        :data:`PID_MARKER` and the PID of the process doing the work (see :meth:`bash_tracked`): a timeout or a
        cancel then ends that process on the board by its PID before raising.
        """
        timeout = self.config.command_timeout if timeout is None else timeout
        lines: deque[str] = deque(maxlen=20000)
        pids: list[int] = []
        try:
            channel = self.transport.open_session(timeout=self.config.connect_timeout)
            channel.set_combine_stderr(True)
            channel.settimeout(0.2)
            channel.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
            raise self._lost("a command", exc) from exc
        deadline = time.monotonic() + timeout
        pending = b""

        def emit(raw: bytes) -> None:
            line = inert(raw.decode("utf-8", errors="replace").rstrip("\r"))
            if track_pid and not pids and line.startswith(PID_MARKER):
                pids.append(int(line[len(PID_MARKER) :].strip()))
                return
            lines.append(line)
            if on_line is not None:
                on_line(line)

        def end_remote() -> None:
            channel.close()
            for pid in pids:
                self.kill(pid)

        try:
            while True:
                try:
                    chunk = channel.recv(32768)
                except TimeoutError:
                    chunk = None
                if chunk:
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    for raw in complete:
                        emit(raw)
                elif chunk == b"":
                    break
                if should_stop is not None and should_stop():
                    end_remote()
                    raise CancelledError(f"Cancelled; the remote command was ended on {self.label}")
                if time.monotonic() > deadline:
                    end_remote()
                    ended = f" and ended (PID {pids[0]})" if pids else ""
                    raise RemoteTimeoutError(
                        f"Remote command timed out after {timeout:g} s{ended} on {self.label}",
                        "The board may be slow or stuck: raise the timeout, or check the board",
                    )
                if not self.transport.is_active():
                    raise self._lost("a command")
            if pending:
                emit(pending)
            status = channel.recv_exit_status()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise self._lost("a command", exc) from exc
        finally:
            channel.close()
        if status < 0:
            raise self._lost("a command")
        return CommandResult(status, list(lines))

    def kill(self, pid: int, timeout: float = 15.0) -> None:
        """End process ``pid`` on the board (TERM, then KILL), by its number, never by name.

        Only if its command line still names the runner or ATC, so a PID the kernel has given to something else
        meanwhile is left alone. A dropped connection is ignored (sshd ends a session's processes with it).
        """
        p = int(pid)
        script = (
            f"if grep -qaE 'acl_runner|atc' /proc/{p}/cmdline 2>/dev/null; then "
            f"kill -TERM {p} 2>/dev/null; for i in 1 2 3 4 5 6 7 8 9 10; do "
            f"[ -d /proc/{p} ] || break; sleep 0.2; done; "
            f"[ -d /proc/{p} ] && kill -KILL {p} 2>/dev/null; fi; true"
        )
        try:
            self.run(script, timeout=timeout)
        except BridgeError:
            pass

    def bash_tracked(
        self,
        script: str,
        on_line: LineCallback | None = None,
        timeout: float | None = None,
        should_stop: StopCheck | None = None,
    ) -> CommandResult:
        """Run ``script`` in a login bash whose last command is ``exec``-ed, tracking that process' PID.

        ``script`` must end with ``exec <program> ...`` so the PID printed first (``$$``) is the program's: a
        timeout or a cancel ends it on the board by that PID (:meth:`kill`).
        """
        wrapped = f'echo "{PID_MARKER}$$"; {script}'
        return self.run(
            "bash -lc " + shlex.quote(wrapped),
            on_line=on_line,
            timeout=timeout,
            should_stop=should_stop,
            track_pid=True,
        )

    def bash(
        self, script: str, on_line: LineCallback | None = None, timeout: float | None = None
    ) -> CommandResult:
        """Run ``script`` in a login bash (``bash -lc``), the way ATLAS.md says toolkit commands must run."""
        return self.run("bash -lc " + shlex.quote(script), on_line=on_line, timeout=timeout)

    def check(
        self,
        script: str,
        what: str,
        on_line: LineCallback | None = None,
        timeout: float | None = None,
        hint: str = "",
    ) -> CommandResult:
        """:meth:`bash`, raising :class:`RemoteCommandError` (with the output's tail) on a non-zero status."""
        result = self.bash(script, on_line=on_line, timeout=timeout)
        if result.exit_status != 0:
            last = result.lines[-1] if result.lines else "no output"
            raise RemoteCommandError(
                f"{what} failed on {self.label}: {last}", result.exit_status, result.tail(), hint
            )
        return result

    # ------------------------------------------------------------------------------------------ files
    @property
    def sftp(self) -> paramiko.SFTPClient:
        """The SFTP session (opened on first use)."""
        if self._sftp is None:
            try:
                self._sftp = self.client.open_sftp()
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise self._lost("opening SFTP", exc) from exc
            self._sftp_channel(self._sftp).settimeout(self.config.command_timeout)
        return self._sftp

    def _sftp_channel(self, sftp: paramiko.SFTPClient) -> paramiko.Channel:
        channel = sftp.get_channel()
        if channel is None:
            raise self._lost("opening SFTP")
        return channel

    def home(self) -> str:
        """Absolute path of the login user's home directory on the board."""
        if self._home is None:
            self._home = self.sftp.normalize(".")
        return self._home

    def absolute(self, path: str) -> str:
        """Resolve ``~/x``, ``x`` (relative to home) or ``/x`` to an absolute remote path."""
        if path == "~" or path.startswith("~/"):
            path = path[2:]
        return posixpath.normpath(posixpath.join(self.home(), path))

    def makedirs(self, path: str) -> None:
        """``mkdir -p`` for an absolute remote path."""
        self.check(
            f"mkdir -p -- {shlex.quote(path)}",
            f"Creating {path}",
            hint="Check that the user may write there, or choose another remote folder",
        )

    def upload(
        self,
        local: str | os.PathLike[str],
        remote: str,
        progress: Callable[[int, int], None] | None = None,
        should_stop: StopCheck | None = None,
        stall_timeout: float = 30.0,
    ) -> int:
        """Upload a file atomically: SFTP writes under a temporary name in the same folder, then a rename.

        A dropped connection leaves at most a ``.<name>.part-*`` file, which nothing uses and the next upload to
        that folder removes; a cancel removes it at once. No progress for ``stall_timeout`` seconds raises
        :class:`UploadStalledError`.
        """
        with open(local, "rb") as f:
            return self.upload_fileobj(f, remote, progress, should_stop, stall_timeout)

    def upload_bytes(
        self,
        data: bytes,
        remote: str,
        progress: Callable[[int, int], None] | None = None,
        should_stop: StopCheck | None = None,
        stall_timeout: float = 30.0,
    ) -> int:
        """Like :meth:`upload` for in-memory data."""
        return self.upload_fileobj(io.BytesIO(data), remote, progress, should_stop, stall_timeout)

    def upload_fileobj(
        self,
        fileobj: IO[bytes],
        remote: str,
        progress: Callable[[int, int], None] | None = None,
        should_stop: StopCheck | None = None,
        stall_timeout: float = 30.0,
    ) -> int:
        """Atomic upload of an open binary file object; returns the bytes written."""
        if not stall_timeout > 0:
            raise ValueError(f"stall timeout must be more than 0 seconds, not {stall_timeout}")
        folder, name = posixpath.split(remote)
        tmp = posixpath.join(folder, f".{name}.part-{secrets.token_hex(4)}")
        sftp = self.sftp
        data = fileobj.read()
        total, done = len(data), 0
        channel = self._sftp_channel(sftp)
        try:
            self._remove_stale_parts(folder, name)
            channel.settimeout(stall_timeout)  # a write that cannot move for this long raises socket.timeout
            remote_file = sftp.open(tmp, "wb")
            remote_file.set_pipelined(True)
            try:
                while done < total:
                    if should_stop is not None and should_stop():
                        raise CancelledError(f"Cancelled the upload of {name} after {done} of {total} bytes")
                    chunk = data[done : done + UPLOAD_CHUNK]
                    remote_file.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
            except CancelledError:
                remote_file.close()
                raise
            remote_file.close()  # waits for the pipelined writes' answers (a stall times out here too)
            size = sftp.stat(tmp).st_size
            if size != total:
                raise OSError(f"{tmp} holds {size} bytes, not {total}")
            sftp.posix_rename(tmp, remote)
        except CancelledError:
            self._remove_quietly(tmp)
            raise
        except TimeoutError as exc:
            if not self._alive():
                raise self._lost(f"the upload of {name}", exc) from exc
            self.close()  # the SFTP channel is wedged: nothing more can be sent over it
            raise UploadStalledError(
                f"The upload of {name} to {self.label} stalled: no progress for {stall_timeout:g} s "
                f"({done:,} of {total:,} bytes sent)",
                "Check the cable/network and the board (is it overloaded or out of disk?), then deploy again",
            ) from None
        except Exception as exc:  # noqa: BLE001 - paramiko raises many types when the link dies
            link_errors = (paramiko.SSHException, EOFError, ConnectionError)
            if not self._alive() or isinstance(exc, link_errors) or "socket is closed" in str(exc).lower():
                raise self._lost(f"the upload of {name}", exc) from exc
            if not isinstance(exc, (OSError, paramiko.SFTPError)):
                raise
            self._remove_quietly(tmp)
            raise BridgeError(
                f"Uploading {name} to {folder} failed: {inert(str(exc))}",
                "Check free disk space and permissions on the board",
            ) from exc
        finally:
            if self._sftp is not None:
                channel.settimeout(self.config.command_timeout)
        return total

    def _remove_quietly(self, remote: str) -> None:
        try:
            self.sftp.remove(remote)
        except (OSError, paramiko.SFTPError, BridgeError):
            pass

    def _remove_stale_parts(self, folder: str, name: str) -> None:
        try:
            for entry in self.sftp.listdir(folder):
                if entry.startswith(f".{name}.part-"):
                    self.sftp.remove(posixpath.join(folder, entry))
        except FileNotFoundError:
            pass

    def read_bytes(self, remote: str, limit: int | None = None) -> bytes:
        """Read a remote file (or its first ``limit`` bytes)."""
        try:
            with self.sftp.open(remote, "rb") as f:
                return f.read(limit) if limit is not None else f.read()
        except (TimeoutError, paramiko.SSHException, EOFError) as exc:
            raise self._lost(f"reading {remote}", exc) from exc

    def size(self, remote: str) -> int:
        """Size in bytes of a remote file."""
        size = self.sftp.stat(remote).st_size
        if size is None:
            raise BridgeError(f"The board did not report the size of {remote}")
        return size
