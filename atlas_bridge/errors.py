"""Typed errors of the bridge: each says what went wrong and what the user should do about it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from atlas_bridge.atc import AtcMessage


class BridgeError(Exception):
    """Base class: ``message`` says what failed, ``hint`` what to do; ``str()`` gives both."""

    step: str | None = None  # the deploy step that raised it (set by atlas_bridge.pipeline.Deployer)

    def __init__(self, message: str, hint: str = ""):
        self.message = message
        self.hint = hint
        super().__init__(f"{message}. {hint}".strip() if hint else message)


class ConnectError(BridgeError):
    """The board could not be reached (refused, unreachable, unknown host name, timed out)."""


class AuthenticationError(BridgeError):
    """The board refused the credentials (wrong password, key not authorized, no agent key)."""


class HostKeyUnknownError(BridgeError):
    """The board's host key is not known and the user did not trust its fingerprint."""

    def __init__(self, host: str, fingerprint: str, key_type: str):
        self.host, self.fingerprint, self.key_type = host, fingerprint, key_type
        super().__init__(
            f"The host key of {host} is not known ({key_type} {fingerprint}) and was not trusted",
            "Check the fingerprint on the board (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and trust it "
            f"(CLI: --trust-host-key {fingerprint})",
        )


class HostKeyChangedError(BridgeError):
    """The board presented a different host key than the one on record: always refused.

    ``host`` is the known_hosts name: ``host`` on port 22, ``[host]:port`` elsewhere (what ``ssh-keygen -R`` needs).
    """

    def __init__(self, host: str, fingerprint: str, expected: str, app_known_hosts: str = ""):
        self.host, self.fingerprint, self.expected = host, fingerprint, expected
        app = f' and ssh-keygen -R "{host}" -f {app_known_hosts}' if app_known_hosts else ""
        super().__init__(
            f"WARNING: THE HOST KEY OF {host} HAS CHANGED (now {fingerprint}, on record {expected}). "
            "Someone could be intercepting the connection, or the board was re-installed; connection refused",
            f'If the board was re-flashed, remove its old entry (ssh-keygen -R "{host}"{app}) and connect again '
            "to trust the new key",
        )


class KeyPassphraseError(AuthenticationError):
    """The private key file is encrypted and its passphrase is missing (``wrong=False``) or wrong."""

    def __init__(self, key_file: str, wrong: bool):
        self.key_file, self.wrong = key_file, wrong
        what = "the passphrase given for it is wrong" if wrong else "no passphrase was given"
        super().__init__(
            f"The private key {key_file} is encrypted and {what}",
            "Enter the key's passphrase (CLI: --key-passphrase-env VAR, with the passphrase in that variable)",
        )


class CancelledError(BridgeError):
    """The person cancelled; what ran on the board was ended and partial files removed."""


class UploadStalledError(BridgeError):
    """No byte of an upload moved for the stall timeout (the link hangs without dropping)."""


class RemoteTimeoutError(BridgeError):
    """A remote command or transfer took longer than its timeout."""


class RemoteCommandError(BridgeError):
    """A remote command exited with a non-zero status; carries the status and the output's tail."""

    def __init__(self, message: str, exit_status: int, tail: str, hint: str = ""):
        self.exit_status, self.tail = exit_status, tail
        super().__init__(f"{message} (exit status {exit_status})", hint)


class ConnectionLostError(BridgeError):
    """The connection dropped while a command or transfer was running."""


class BoardCheckError(BridgeError):
    """The board lacks something the deploy needs (toolkit, NPU, python3/numpy, acl, disk)."""


class ToolkitNotFoundError(BoardCheckError):
    """No CANN set_env.sh was found where ATLAS.md says toolkits install."""


class AclMissingError(BoardCheckError):
    """pyACL (``import acl``) is not importable on the board even after sourcing set_env.sh."""


class AtcError(BridgeError):
    """ATC failed; carries the exit status, the parsed error codes and the output's tail."""

    def __init__(self, exit_status: int, errors: list[AtcMessage], tail: str, hint: str = ""):
        self.exit_status, self.errors, self.tail = exit_status, errors, tail
        summary = "; ".join(f"{e.code}: {e.text}" for e in errors) or "no error code printed"
        solutions = " ".join(f"{e.code} solution: {e.solution}" for e in errors if e.solution)
        super().__init__(
            f"ATC conversion failed (exit status {exit_status}): {summary}",
            " ".join(x for x in (solutions, hint) if x),
        )


class OmFileError(BridgeError):
    """The produced .om is missing, not an OM file, or truncated."""


class RunnerError(BridgeError):
    """The on-board runner failed (pyACL error, bad output)."""


class ModelError(BridgeError):
    """The local ONNX model cannot be deployed (unreadable, wrong input/output contract, an op ATC refuses)."""


class RemoteDirError(BridgeError, ValueError):
    """The remote folder is ``/``, empty, or outside the login user's home without being forced."""
