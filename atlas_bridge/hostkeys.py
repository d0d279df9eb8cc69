"""Host-key trust: OpenSSH fingerprints, the app's own known_hosts and the "trust this fingerprint?" policy.

Keys are checked against the system known_hosts (``~/.ssh/known_hosts``) and the app's file. An unknown key is
accepted only when the trust callback (a GUI dialog, a CLI flag or prompt) says yes, and is then recorded in the
app's file; a changed key is refused by paramiko's check and reported loudly by the connection.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paramiko

from atlas_bridge.errors import HostKeyUnknownError
from core import userdirs
from core.fileio import atomic_write_bytes


@dataclass(frozen=True)
class HostKeyInfo:
    """What the user is asked to trust: host (``[h]:port`` form off port 22), key type, fingerprint."""

    host: str
    key_type: str
    fingerprint: str


TrustCallback = Callable[[HostKeyInfo], bool]


def known_hosts_name(host: str, port: int) -> str:
    """How known_hosts (and ``ssh-keygen -R``) name a host: ``host`` on port 22, ``[host]:port`` elsewhere."""
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style ``SHA256:<base64 without padding>`` fingerprint of a host key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def normalize_fingerprint(text: str) -> str:
    """Accept ``SHA256:abc``, ``abc`` or ``abc=`` and return the canonical ``SHA256:abc``."""
    text = text.strip()
    if text.upper().startswith("SHA256:"):
        text = text[len("SHA256:") :]
    return "SHA256:" + text.rstrip("=")


def trust_fingerprint(expected: str | None) -> TrustCallback:
    """Trust callback for ``--trust-host-key``: yes only for that exact fingerprint (None: never)."""
    wanted = normalize_fingerprint(expected) if expected else None

    def callback(info: HostKeyInfo) -> bool:
        return wanted is not None and info.fingerprint == wanted

    return callback


def app_known_hosts_path() -> Path:
    """The app's own known_hosts (:func:`core.userdirs.known_hosts_file`; ``~/.local/share/digit-distill``)."""
    return userdirs.known_hosts_file()


def record_host_key(path: Path, host: str, key: paramiko.PKey) -> None:
    """Add ``host``'s key to the known_hosts file at ``path`` (atomic rewrite, other entries kept)."""
    keys = paramiko.HostKeys()
    if path.exists():
        keys.load(str(path))
    keys.add(host, key.get_name(), key)
    lines = io.StringIO()
    # HostKeys.save() writes in place; we want an atomic replace. Its lines are only in _entries (not in the stubs).
    for entry in keys._entries:  # type: ignore[attr-defined]
        line = entry.to_line()
        if line:
            lines.write(line)
    atomic_write_bytes(path, lines.getvalue().encode("ascii"))


class TrustOnConfirmPolicy(paramiko.MissingHostKeyPolicy):
    """Accept an unknown host key only if ``callback`` confirms its fingerprint; then remember it.

    Parameters
    ----------
    callback
        Asked with a :class:`HostKeyInfo`; ``None`` rejects every unknown key.
    store
        The app's known_hosts file that trusted keys are added to.
    """

    def __init__(self, callback: TrustCallback | None, store: Path):
        self.callback = callback
        self.store = store

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:  # noqa: D102
        info = HostKeyInfo(hostname, key.get_name(), fingerprint(key))
        if self.callback is None or not self.callback(info):
            raise HostKeyUnknownError(hostname, info.fingerprint, info.key_type)
        client.get_host_keys().add(hostname, key.get_name(), key)
        record_host_key(self.store, hostname, key)
