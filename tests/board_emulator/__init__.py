"""Board emulator: a TEST DOUBLE of an Atlas 200 DK (real sshd on loopback + stand-in atc, npu-smi and acl).

Nothing here talks to Huawei software; it reproduces the behaviour ATLAS.md section 6 describes so that the
bridge can be tested end to end without a board. ``python -m tests.board_emulator`` runs one for a person.
"""

from tests.board_emulator.server import BoardEmulator, EmulatorConfig, EmulatorError, openssh_fingerprint

__all__ = ["BoardEmulator", "EmulatorConfig", "EmulatorError", "openssh_fingerprint"]
