"""Deploy ONNX digit classifiers to a Huawei Atlas board over SSH (no Qt, no app imports).

Modules: ``connection`` (one paramiko connection class with host-key trust), ``hostkeys`` (fingerprints and the
app's known_hosts), ``atc`` (ATC command building, output parsing, .om header checks), ``board`` (the board check),
``pipeline`` (the deploy steps), ``local`` (local onnxruntime comparison), ``remote/acl_runner.py`` (runs ON the
board with pyACL). See ATLAS.md for the facts these follow.
"""

from atlas_bridge.errors import BridgeError

__all__ = ["BridgeError"]
