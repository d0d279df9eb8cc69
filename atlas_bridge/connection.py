"""One SSH connection to a board (paramiko): host-key trust, streamed commands with timeouts, atomic SFTP uploads.

Use as a context manager::

    with BoardConnection(ConnectionConfig(host="192.168.1.2", user="HwHiAiUser", auth="password",
                                          password=pw), trust=callback) as conn:
        conn.bash(". /usr/local/Ascend/ascend-toolkit/set_env.sh && atc --help", on_line=print)

The password lives only in this object's memory (never written anywhere, excluded from ``repr``/``to_dict``).
"""

from __future__ import annotations

import getpass
import io
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

import paramiko

from atlas_bridge.errors import (
    AuthenticationError,
    BridgeError,
    ConnectError,
    ConnectionLostError,
    HostKeyChangedError,
    RemoteCommandError,
    RemoteTimeoutError,
)
from atlas_bridge.hostkeys import TrustCallback, TrustOnConfirmPolicy, app_known_hosts_path, fingerprint
from core import validation as fields

LineCallback = Callable[[str], None]
AUTH_METHODS = ("key", "agent", "password")


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
        For ``auth="password"`` (also used as the key's passphrase for ``auth="key"``); memory only.
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
    connect_timeout: float = 15.0
    command_timeout: float = 120.0
    keepalive_s: int = 15
    ssh_config: str | None = "~/.ssh/config"
    known_hosts: str | None = None

    def __post_init__(self):
        if self.auth not in AUTH_METHODS:
            raise ValueError(f"auth must be one of {AUTH_METHODS}, not {self.auth!r}")
        self.port = fields.PORT.check_optional(self.port)
        self.connect_timeout = fields.CONNECT_TIMEOUT.check(self.connect_timeout)
        self.command_timeout = fields.COMMAND_TIMEOUT.check(self.command_timeout)
        self.keepalive_s = fields.KEEPALIVE.check(self.keepalive_s)

    def to_dict(self) -> dict:
        """Plain data for saving settings: everything except the password."""
        d = asdict(self)
        d.pop("password")
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
    found: dict = {}
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
        kwargs = dict(
            hostname=e.hostname,
            port=e.port,
            username=e.user,
            timeout=cfg.connect_timeout,
            banner_timeout=cfg.connect_timeout,
            auth_timeout=cfg.connect_timeout,
            allow_agent=cfg.auth == "agent",
            look_for_keys=cfg.auth == "key" and e.key_file is None,
        )
        if cfg.auth == "password":
            kwargs["password"] = cfg.password
        elif cfg.auth == "key":
            kwargs["key_filename"] = e.key_file
            kwargs["passphrase"] = cfg.password
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
        transport = client.get_transport()
        if cfg.keepalive_s:
            transport.set_keepalive(cfg.keepalive_s)
        self._client = client
        return self

    def _connect_error(self, exc: BaseException, timed_out: bool = False) -> BaseException:
        where = f"{self.endpoint.hostname}:{self.endpoint.port}"
        if isinstance(exc, paramiko.BadHostKeyException):
            return HostKeyChangedError(where, fingerprint(exc.key), fingerprint(exc.expected_key))
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
            return AuthenticationError(f"Login to {self.label} failed ({exc})", how)
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
        handshake = ("banner", "no existing session", "negotiation")
        stalled = timed_out and isinstance(exc, (paramiko.SSHException, EOFError, OSError))
        if stalled or (
            isinstance(exc, paramiko.SSHException) and any(w in str(exc).lower() for w in handshake)
        ):
            return ConnectError(
                f"{where} accepted the connection but did not complete the SSH handshake within "
                f"{self.config.connect_timeout:g} s",
                "Check that this is the board's SSH port and that sshd is not stuck, or raise the connect timeout",
            )
        if isinstance(exc, (paramiko.SSHException, OSError, EOFError)):
            return ConnectError(
                f"SSH connection to {where} failed: {exc}", "Check the address, port and network"
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

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def client(self) -> paramiko.SSHClient:
        """The connected paramiko client."""
        if self._client is None:
            raise ConnectionLostError(f"Not connected to {self.label}", "Connect first")
        return self._client

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
        self, command: str, on_line: LineCallback | None = None, timeout: float | None = None
    ) -> CommandResult:
        """Run ``command`` with the login shell's ``-c``; stream merged output lines to ``on_line``.

        Raises :class:`RemoteTimeoutError` after ``timeout`` seconds (default ``command_timeout``) and
        :class:`ConnectionLostError` if the connection drops; a non-zero exit status is returned, not raised.
        """
        timeout = self.config.command_timeout if timeout is None else timeout
        lines: deque[str] = deque(maxlen=20000)
        try:
            channel = self.client.get_transport().open_session(timeout=self.config.connect_timeout)
            channel.set_combine_stderr(True)
            channel.settimeout(0.2)
            channel.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
            raise self._lost("a command", exc) from exc
        deadline = time.monotonic() + timeout
        pending = b""

        def emit(raw: bytes) -> None:
            line = raw.decode("utf-8", errors="replace").rstrip("\r")
            lines.append(line)
            if on_line is not None:
                on_line(line)

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
                if time.monotonic() > deadline:
                    channel.close()
                    raise RemoteTimeoutError(
                        f"Remote command timed out after {timeout:g} s on {self.label}",
                        "The board may be slow or stuck: raise the timeout, or check the board",
                    )
                if not self.client.get_transport().is_active():
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

    def bash(
        self, script: str, on_line: LineCallback | None = None, timeout: float | None = None
    ) -> CommandResult:
        """Run ``script`` in a login bash (``bash -lc``), the way ATLAS.md says toolkit commands must run."""
        return self.run("bash -lc " + shlex.quote(script), on_line=on_line, timeout=timeout)

    def check(self, script: str, what: str, on_line: LineCallback | None = None, timeout: float | None = None,
              hint: str = "") -> CommandResult:  # fmt: skip
        """:meth:`bash`, raising :class:`RemoteCommandError` (with the output's tail) on a non-zero status."""
        result = self.bash(script, on_line=on_line, timeout=timeout)
        if result.exit_status != 0:
            raise RemoteCommandError(f"{what} failed on {self.label}:\n{result.tail(15)}", result.exit_status,
                                     result.tail(), hint)  # fmt: skip
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
            self._sftp.get_channel().settimeout(self.config.command_timeout)
        return self._sftp

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
        self.check(f"mkdir -p -- {shlex.quote(path)}", f"Creating {path}",
                   hint="Check that the user may write there, or choose another remote folder")  # fmt: skip

    def upload(
        self, local: str | os.PathLike, remote: str, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Upload a file atomically: SFTP put under a temporary name in the same folder, then rename over ``remote``.

        A dropped connection leaves at most a ``.<name>.part-*`` file, which nothing uses and the next upload
        to that folder removes.
        """
        with open(local, "rb") as f:
            return self.upload_fileobj(f, remote, progress)

    def upload_bytes(
        self, data: bytes, remote: str, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Like :meth:`upload` for in-memory data."""
        return self.upload_fileobj(io.BytesIO(data), remote, progress)

    def upload_fileobj(self, fileobj, remote: str, progress: Callable[[int, int], None] | None = None) -> int:
        """Atomic upload of an open binary file object; returns the bytes written."""
        folder, name = posixpath.split(remote)
        tmp = posixpath.join(folder, f".{name}.part-{secrets.token_hex(4)}")
        sftp = self.sftp
        try:
            self._remove_stale_parts(folder, name)
            attrs = sftp.putfo(fileobj, tmp, callback=progress, confirm=True)
            sftp.posix_rename(tmp, remote)
        except Exception as exc:  # noqa: BLE001 - paramiko raises many types when the link dies
            link_errors = (TimeoutError, paramiko.SSHException, EOFError, ConnectionError)
            if not self._alive() or isinstance(exc, link_errors) or "socket is closed" in str(exc).lower():
                raise self._lost(f"the upload of {name}", exc) from exc
            if not isinstance(exc, (OSError, paramiko.SFTPError)):
                raise
            try:
                sftp.remove(tmp)
            except (OSError, paramiko.SFTPError):
                pass
            raise BridgeError(f"Uploading {name} to {folder} failed: {exc}",
                              "Check free disk space and permissions on the board") from exc  # fmt: skip
        return attrs.st_size

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
        return self.sftp.stat(remote).st_size
