"""Write core/bundled/mnist-check.npz: 300 MNIST test images (30 per digit) for the model sanity check.

Usage::

    python scripts/make_check_images.py [--data-dir DIR] [--out FILE]

The images are a fixed random sample (seed 0) of the MNIST *test* set, stratified by digit, stored as the
original uint8 pixels (``images`` ``(300, 28, 28)``, ``labels`` ``(300,)`` uint8, ``indices`` into the test set)
in a compressed npz of about 50 kB. ``core.sanity.check_model`` runs a chosen model on them.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.data import load_mnist  # noqa: E402
from core.fileio import atomic_write_bytes  # noqa: E402
from core.sanity import CHECK_IMAGES  # noqa: E402

PER_DIGIT = 30


def main(argv: list[str] | None = None) -> int:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", help="folder with the MNIST files (default: $DIGIT_DISTILL_DATA or the cache)"
    )
    parser.add_argument("--out", type=Path, default=CHECK_IMAGES, help="file to write (default: %(default)s)")
    args = parser.parse_args(argv)
    mnist = load_mnist(args.data_dir)
    labels = mnist.test_labels.numpy()
    rng = np.random.default_rng(0)
    indices = np.sort(
        np.concatenate([rng.choice(np.flatnonzero(labels == d), PER_DIGIT, replace=False) for d in range(10)])
    )
    images = np.round(mnist.test_images.numpy()[indices, 0] * 255).astype(np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, images=images, labels=labels[indices].astype(np.uint8), indices=indices.astype(np.uint16)
    )
    atomic_write_bytes(args.out, buffer.getvalue())
    print(f"{args.out}: {len(indices)} images, {len(buffer.getvalue()):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
