"""The training data a job sees: a fixed subset, the recipe's writing styles, the students' augmentation pool.

A recipe's data choices apply wherever the recipe is used (``digit-distill train-*``/``distill``, the Train tab,
``reproduce``, ``sweep``, torchrun), because :mod:`core.jobs` is the only caller of :func:`prepare`.

Order: the validation split, when the job asks for one, is held out first (the last images of the training
set, left untouched; :meth:`core.data.MNIST.hold_out_validation`); then the subset of ``max_train_samples`` is
taken (the same fixed pick as ``core.training``), so that a quick run redraws only the images it trains on; then
the recipe's share of its zeros, ones and sevens is redrawn in European styles (fixed seed) and its ``restroke``
share of digits redrawn with the canvas's round pen; then,
for the students of a recipe with ``pool_copies``, the subset plus that many jittered, restyled copies is drawn
once (fixed seed). Both students then see exactly the same images; only their targets differ, and the teacher's
logits on the pool are computed once per teacher (:class:`JobCache`) instead of on every batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.augment import AugmentConfig, random_affine, restroke
from core.data import MNIST
from core.styles import FLAG_MIN_ANGLE, add_styles, curve_ones

#: Seed of the styles and of the augmentation pool (fixed: every job of a recipe sees the same data).
POOL_SEED = 1234


def _with_train(data: MNIST, images: torch.Tensor, labels: torch.Tensor) -> MNIST:
    return replace(data, train_images=images, train_labels=labels)


def styled(
    data: MNIST,
    share: float,
    seed: int = POOL_SEED,
    restroke_share: float = 0.0,
    flag_min_angle: float = FLAG_MIN_ANGLE,
    curved_ones: float = 0.0,
) -> MNIST:
    """``data`` with ``share`` of its zeros, ones and sevens redrawn in European styles (:mod:`core.styles`).

    ``flag_min_angle`` is the shallowest flag of the European ones (:func:`core.styles.european_ones`); then
    ``curved_ones`` of the ones are bent into an arc or an S (:func:`core.styles.curve_ones`).

    Then, with ``restroke_share``, that share of all digits is redrawn along its centre line with a round pen
    like the app's canvas (:func:`core.augment.restroke`). Both are drawn from one generator with a fixed seed.
    """
    if not share and not restroke_share and not curved_ones:
        return data
    gen = torch.Generator().manual_seed(seed)
    images = data.train_images
    if share:
        images = add_styles(images, data.train_labels, share, gen, flag_min_angle)
    if curved_ones:
        images = curve_ones(images, data.train_labels, curved_ones, gen)
    if restroke_share:
        pick = torch.nonzero(torch.rand(len(images), generator=gen) < restroke_share).flatten()
        images = images.clone()
        for chunk in torch.split(pick, 4096):
            images[chunk] = restroke(images[chunk], gen)
    return _with_train(data, images, data.train_labels)


def subset(data: MNIST, n: int | None) -> MNIST:
    """The first ``n`` of a fixed (seed 0) shuffle of the training set; the test set unchanged."""
    if n is None or n >= len(data.train_images):
        return data
    keep = torch.randperm(len(data.train_images), generator=torch.Generator().manual_seed(0))[:n]
    return _with_train(data, data.train_images[keep], data.train_labels[keep])


def augmentation_pool(
    data: MNIST,
    copies: int,
    augmentation: AugmentConfig,
    styles: float = 0.0,
    seed: int = POOL_SEED,
    flag_min_angle: float = FLAG_MIN_ANGLE,
) -> MNIST:
    """The training set followed by ``copies`` jittered (and, with ``styles``, restyled) copies of it."""
    gen = torch.Generator().manual_seed(seed + 1)
    parts, labels = [data.train_images], [data.train_labels]
    for _ in range(copies):
        chunks = []
        for x, y in zip(torch.split(data.train_images, 10_000), torch.split(data.train_labels, 10_000)):
            if styles:
                x = add_styles(x, y, styles, gen, flag_min_angle)
            chunks.append(random_affine(x, augmentation, gen))
        parts.append(torch.cat(chunks))
        labels.append(data.train_labels)
    return _with_train(data, torch.cat(parts), torch.cat(labels))


def prepare(
    data: MNIST,
    *,
    styles: float,
    pool_copies: int,
    augmentation: AugmentConfig,
    max_train_samples: int | None,
    max_test_samples: int | None,
    validation: int | None = None,
    restroke: float = 0.0,
    flag_min_angle: float = FLAG_MIN_ANGLE,
    curved_ones: float = 0.0,
) -> MNIST:
    """The training and test data of one job (see the module docstring for the order)."""
    if validation:
        data = data.hold_out_validation(validation)
    out = styled(
        subset(data, max_train_samples),
        styles,
        restroke_share=restroke,
        flag_min_angle=flag_min_angle,
        curved_ones=curved_ones,
    )
    if pool_copies:
        out = augmentation_pool(out, pool_copies, augmentation, styles, flag_min_angle=flag_min_angle)
    if max_test_samples is not None:
        out = replace(
            out,
            test_images=out.test_images[:max_test_samples],
            test_labels=out.test_labels[:max_test_samples],
        )
    return out


class JobCache:
    """Prepared data, teachers and teacher logits kept between the jobs of one experiment (reproduce, sweep).

    Keys hold the objects themselves (not only their ids), so a cached entry never outlives what it was made from.
    """

    def __init__(self) -> None:
        self._data: dict[tuple[object, ...], tuple[MNIST, MNIST]] = {}
        self._teachers: dict[str, tuple[nn.Module, dict[str, Any]]] = {}
        self._logits: dict[tuple[str, int], tuple[MNIST, torch.Tensor]] = {}

    def data(self, data: MNIST, **options: Any) -> MNIST:
        """:func:`prepare` once per source data and options."""
        key = (id(data), *sorted(options.items()))
        if key not in self._data or self._data[key][0] is not data:
            self._data[key] = (data, prepare(data, **options))
        return self._data[key][1]

    def teacher(
        self, path: Path, load: Callable[[Path], tuple[nn.Module, dict[str, Any]]]
    ) -> tuple[nn.Module, dict[str, Any]]:
        """``load(path)`` once per teacher path."""
        key = str(Path(path).resolve())
        if key not in self._teachers:
            self._teachers[key] = load(path)
        return self._teachers[key]

    def logits(self, path: Path, teacher: nn.Module, data: MNIST, device: torch.device) -> torch.Tensor:
        """The teacher's logits on ``data``'s training images (CPU), computed once per teacher and data."""
        from core.training import predict_logits

        key = (str(Path(path).resolve()), id(data))
        if key not in self._logits or self._logits[key][0] is not data:
            logits = predict_logits(teacher.to(device), data.train_images).cpu()
            teacher.cpu()
            self._logits[key] = (data, logits)
        return self._logits[key][1]


def with_personal(
    data: MNIST,
    strokes_path: Path,
    indices: list[int] | None,
    copies: int,
    augmentation: AugmentConfig,
    seed: int = POOL_SEED,
) -> MNIST:
    """``data`` with a person's drawn digits added: each rendered like the canvas, plus ``copies`` jittered ones.

    ``indices`` picks samples of the strokes file (all when ``None``). The jitter is the recipe's augmentation
    drawn once with a fixed seed, so the same job sees the same images every time (and a resume too).
    """
    import numpy as np

    from core.preprocess import to_mnist
    from core.strokes import load_drawn, render_strokes

    samples = load_drawn(strokes_path)
    if indices is not None:
        bad = [i for i in indices if not 0 <= i < len(samples)]
        if bad:
            raise ValueError(f"{strokes_path} has {len(samples)} samples; no sample {bad[0]}")
        samples = [samples[i] for i in indices]
    if not samples:
        raise ValueError(f"{strokes_path}: no personal digits to learn from")
    images = torch.from_numpy(
        np.stack([to_mnist(render_strokes(s.strokes)) for s in samples])[:, None].astype(np.float32)
    )
    labels = torch.tensor([s.label for s in samples], dtype=torch.int64)
    gen = torch.Generator().manual_seed(seed + 2)
    parts, part_labels = [data.train_images, images], [data.train_labels, labels]
    for _ in range(copies):
        parts.append(random_affine(images, augmentation, gen))
        part_labels.append(labels)
    return _with_train(data, torch.cat(parts), torch.cat(part_labels))
