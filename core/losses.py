"""Knowledge-distillation loss (Hinton, Vinyals and Dean 2015, "Distilling the Knowledge in a Neural Network")."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F  # noqa: N812


class KDLossParts(NamedTuple):
    """The total loss and its two components (all scalars, the total carries gradients)."""

    total: torch.Tensor
    soft: torch.Tensor
    hard: torch.Tensor


def check_kd_params(temperature: float, alpha: float) -> None:
    """Refuse a temperature that is not finite and > 0, or an alpha outside [0, 1], with a clear message."""
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature T must be finite and > 0, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    alpha: float,
) -> KDLossParts:
    r"""Distillation loss with its soft and hard parts.

    .. math::

        L = \alpha \, T^2 \, \mathrm{KL}\big(\mathrm{softmax}(z_t / T) \,\|\, \mathrm{softmax}(z_s / T)\big)
            + (1 - \alpha) \, \mathrm{CE}(z_s, y)

    The KL term uses ``batchmean`` reduction (the true KL divergence per sample). Its gradient with respect to
    the student logits scales as :math:`1 / T^2`, so the :math:`T^2` factor keeps the soft term's gradient
    magnitude roughly constant when T changes (Hinton et al. 2015, section 2).

    Parameters
    ----------
    student_logits, teacher_logits
        ``(N, C)`` logits; the teacher's must not require gradients (call the teacher under ``no_grad``).
    labels
        ``(N,)`` integer class labels.
    temperature
        Softening temperature T > 0.
    alpha
        Weight of the soft term in [0, 1]; ``alpha = 0`` is plain cross-entropy.

    Returns
    -------
    KDLossParts
        ``total``, ``soft`` (the KL term times T^2, before alpha) and ``hard`` (the cross-entropy).
    """
    check_kd_params(temperature, alpha)
    return distillation_loss_from_soft_targets(
        student_logits, soft_targets(teacher_logits, temperature), labels, temperature, alpha
    )


def soft_targets(teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The teacher's softened distribution as log-probabilities, ``log_softmax(z_t / T)`` (no gradient)."""
    return F.log_softmax(teacher_logits.detach() / temperature, dim=1)


def distillation_loss_from_soft_targets(
    student_logits: torch.Tensor,
    teacher_log_probs: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    alpha: float,
    labels_b: torch.Tensor | None = None,
    lam: float = 1.0,
) -> KDLossParts:
    """:func:`distillation_loss` with the teacher's :func:`soft_targets` computed beforehand.

    Without augmentation the trainer caches the soft targets of the whole training set once per
    distillation, so each step only gathers them. For a mixup batch (images ``lam * a + (1 - lam) * b``) the
    soft targets are the teacher's outputs on the blended images and the hard term is
    :func:`mixed_cross_entropy` with the partners' ``labels_b``.
    """
    hard = mixed_cross_entropy(student_logits, labels, labels_b, lam)
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    soft = F.kl_div(log_p_student, teacher_log_probs, reduction="batchmean", log_target=True) * temperature**2
    total = alpha * soft + (1.0 - alpha) * hard
    return KDLossParts(total, soft, hard)


def mixed_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    labels_b: torch.Tensor | None = None,
    lam: float = 1.0,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy for mixup (Zhang et al. 2018): ``lam * CE(z, y_a) + (1 - lam) * CE(z, y_b)``.

    Without ``labels_b`` (or with ``lam == 1``) this is the plain cross-entropy with ``labels``.
    """
    ce = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    if labels_b is None or lam == 1.0:
        return ce
    return lam * ce + (1.0 - lam) * F.cross_entropy(logits, labels_b, label_smoothing=label_smoothing)
