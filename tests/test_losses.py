"""The distillation loss against values computed by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from core.losses import distillation_loss


def softmax(z, t=1.0):
    e = [math.exp(v / t) for v in z]
    s = sum(e)
    return [v / s for v in e]


def test_matches_hand_computed_value():
    zs, zt, y, T, alpha = [1.0, 2.0, 3.0], [3.0, 2.0, 1.0], 2, 2.0, 0.7
    ps, pt = softmax(zs, T), softmax(zt, T)
    kl = sum(p * math.log(p / q) for p, q in zip(pt, ps))
    ce = -math.log(softmax(zs)[y])
    expected = alpha * T**2 * kl + (1 - alpha) * ce
    parts = distillation_loss(torch.tensor([zs]), torch.tensor([zt]), torch.tensor([y]), T, alpha)
    assert parts.total.item() == pytest.approx(expected, rel=1e-5)
    assert parts.soft.item() == pytest.approx(T**2 * kl, rel=1e-5)
    assert parts.hard.item() == pytest.approx(ce, rel=1e-5)


def test_batchmean_is_the_mean_of_per_sample_kl():
    torch.manual_seed(0)
    zs, zt = torch.randn(5, 10), torch.randn(5, 10)
    y = torch.randint(0, 10, (5,))
    per_sample = [
        distillation_loss(zs[i : i + 1], zt[i : i + 1], y[i : i + 1], 3.0, 1.0).soft.item() for i in range(5)
    ]
    batch = distillation_loss(zs, zt, y, 3.0, 1.0).soft.item()
    assert batch == pytest.approx(sum(per_sample) / 5, rel=1e-5)


def test_alpha_zero_is_plain_cross_entropy():
    torch.manual_seed(1)
    zs, zt = torch.randn(8, 10), torch.randn(8, 10)
    y = torch.randint(0, 10, (8,))
    total = distillation_loss(zs, zt, y, 6.0, 0.0).total
    assert total.item() == pytest.approx(F.cross_entropy(zs, y).item(), rel=1e-6)


def test_identical_logits_give_zero_soft_loss():
    z = torch.randn(4, 10)
    parts = distillation_loss(z, z.clone(), torch.zeros(4, dtype=torch.long), 4.0, 0.5)
    assert parts.soft.item() == pytest.approx(0.0, abs=1e-6)


def test_t_squared_keeps_soft_gradient_scale_roughly_constant():
    torch.manual_seed(2)
    zt = torch.randn(64, 10) * 3
    base = torch.randn(64, 10) * 3
    norms = {}
    for T in (2.0, 5.0, 10.0, 20.0):
        zs = base.clone().requires_grad_(True)
        distillation_loss(zs, zt, torch.zeros(64, dtype=torch.long), T, 1.0).total.backward()
        norms[T] = zs.grad.norm().item()
    # Without T^2 the gradient would shrink by 100x from T=2 to T=20; with it, it stays within a small factor.
    assert max(norms.values()) / min(norms.values()) < 2.0
    for T in norms:
        zs = base.clone().requires_grad_(True)
        (distillation_loss(zs, zt, torch.zeros(64, dtype=torch.long), T, 1.0).soft / T**2).backward()
        assert zs.grad.norm().item() == pytest.approx(norms[T] / T**2, rel=1e-4)


def test_teacher_gets_no_gradient():
    zt = torch.randn(3, 10, requires_grad=True)
    zs = torch.randn(3, 10, requires_grad=True)
    distillation_loss(zs, zt, torch.tensor([0, 1, 2]), 2.0, 0.5).total.backward()
    assert zt.grad is None and zs.grad is not None


@pytest.mark.parametrize("T, alpha", [(0.0, 0.5), (-1.0, 0.5), (2.0, -0.1), (2.0, 1.5), (float("nan"), 0.5)])
def test_bad_hyperparameters_are_refused(T, alpha):
    with pytest.raises(ValueError, match="temperature|alpha"):
        distillation_loss(torch.zeros(1, 10), torch.zeros(1, 10), torch.zeros(1, dtype=torch.long), T, alpha)


def test_mixed_cross_entropy_weighs_both_labels():
    from core.losses import mixed_cross_entropy

    logits = torch.randn(8, 10)
    a, b = torch.arange(8), torch.arange(8).flip(0)
    torch.testing.assert_close(mixed_cross_entropy(logits, a), F.cross_entropy(logits, a))
    torch.testing.assert_close(mixed_cross_entropy(logits, a, b, 1.0), F.cross_entropy(logits, a))
    expected = 0.3 * F.cross_entropy(logits, a) + 0.7 * F.cross_entropy(logits, b)
    torch.testing.assert_close(mixed_cross_entropy(logits, a, b, 0.3), expected)
