"""The losses against reference formulas computed directly here (value and gradient)."""
from __future__ import annotations

import pytest
import torch

from pyterrier_gradrel.training import GradedInfoNCELoss, InfoNCELoss


def _scores(b: int, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    s = torch.nn.functional.normalize(torch.randn(b, 8, generator=g), dim=1) @ \
        torch.nn.functional.normalize(torch.randn(n, 8, generator=g), dim=1).T
    return s.double().requires_grad_(True)


def _diagonal(b: int, n: int) -> torch.Tensor:
    """Grades of the sampler's layout: candidate i is query i's positive (grade 3), the rest unjudged."""
    grades = torch.zeros(b, n, dtype=torch.long)
    grades[torch.arange(b), torch.arange(b)] = 3
    return grades


def test_infonce_equals_reference_value_and_gradient():
    t = 0.05
    s = _scores(5, 5)
    loss = InfoNCELoss(temperature=t)(s, _diagonal(5, 5))
    (grad,) = torch.autograd.grad(loss, s)
    s2 = s.detach().clone().requires_grad_(True)
    ref = 0.0
    for i in range(5):  # -log(exp(s_ii/t) / sum_j exp(s_ij/t)), written out
        num = torch.exp(s2[i, i] / t)
        den = sum(torch.exp(s2[i, j] / t) for j in range(5))
        ref = ref - torch.log(num / den)
    ref = ref / 5
    (ref_grad,) = torch.autograd.grad(ref, s2)
    assert torch.allclose(loss, ref, rtol=1e-10, atol=1e-12)
    assert torch.allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)
    # analytic gradient: (softmax - onehot) / (t * B)
    p = torch.softmax(s.detach() / t, dim=1)
    assert torch.allclose(grad, (p - torch.eye(5, dtype=p.dtype)) / (t * 5), atol=1e-12)


def test_infonce_mask_removes_entries_and_never_the_target():
    s = _scores(3, 6, seed=1)
    mask = torch.zeros(3, 6, dtype=torch.bool)
    mask[0, 4] = mask[1, 0] = mask[2, 2] = True  # mask[2, 2] is a target: ignored
    loss_fn = InfoNCELoss(temperature=0.1)
    loss = loss_fn(s, _diagonal(3, 6), mask)
    keep = ~mask
    keep[2, 2] = True
    ref = torch.stack([
        -(s[i, i] / 0.1 - torch.logsumexp(s[i][keep[i]] / 0.1, 0)) for i in range(3)
    ]).mean()
    assert torch.allclose(loss, ref)
    # a masked score has no influence at all
    (grad,) = torch.autograd.grad(loss, s)
    assert grad[0, 4] == 0 and grad[1, 0] == 0 and grad[2, 2] != 0


def test_graded_with_single_positive_is_infonce():
    s = _scores(4, 7, seed=2)
    grades = torch.zeros(4, 7, dtype=torch.long)
    grades[torch.arange(4), torch.arange(4)] = torch.tensor([3, 2, 3, 1])
    graded = GradedInfoNCELoss(weights={1: 0.5, 2: 2.0, 3: 9.0}, temperature=0.05)(s, grades)
    plain = InfoNCELoss(temperature=0.05)(s, grades)
    assert torch.allclose(graded, plain)


def test_graded_equal_weights_is_multi_positive_infonce():
    t = 0.05
    s = _scores(4, 8, seed=3)
    grades = torch.tensor([
        [3, 1, 0, 0, 2, 0, 0, 0],
        [0, 2, 0, 1, 0, 0, 3, 0],
        [0, 0, 1, 0, 0, 0, 0, 0],
        [2, 0, 0, 3, 0, 1, 0, 2],
    ])
    mask = torch.zeros(4, 8, dtype=torch.bool)
    mask[0, 7] = mask[2, 5] = True
    loss = GradedInfoNCELoss(weights={1: 1.0, 2: 1.0, 3: 1.0}, temperature=t)(s, grades, mask)
    (grad,) = torch.autograd.grad(loss, s)
    s2 = s.detach().clone().requires_grad_(True)
    rows = []
    for i in range(4):
        keep = ~mask[i]
        den = torch.logsumexp(s2[i][keep] / t, 0)
        pos = [j for j in range(8) if grades[i, j] > 0]
        rows.append(torch.stack([-(s2[i, j] / t - den) for j in pos]).mean())
    ref = torch.stack(rows).mean()
    (ref_grad,) = torch.autograd.grad(ref, s2)
    assert torch.allclose(loss, ref) and torch.allclose(grad, ref_grad)


def test_graded_weights_change_the_loss_and_validation():
    s = _scores(2, 4, seed=4)
    grades = torch.tensor([[3, 1, 0, 0], [1, 3, 0, 0]])
    a = GradedInfoNCELoss(weights={1: 1.0, 3: 1.0})(s, grades)
    b = GradedInfoNCELoss(weights={1: 1.0, 3: 7.0})(s, grades)
    assert not torch.allclose(a, b)
    assert GradedInfoNCELoss(weights={2: 1.0, 3: 2.0}).min_positive_grade == 2
    with pytest.raises(ValueError, match="at least one > 0"):
        GradedInfoNCELoss(weights={1: 0.0})
    with pytest.raises(ValueError, match="temperature must be > 0"):
        InfoNCELoss(temperature=0)
    with pytest.raises(ValueError, match="no row has a positive"):
        GradedInfoNCELoss(weights={3: 1.0})(s, torch.zeros(2, 4, dtype=torch.long))


def test_both_losses_share_one_signature_and_check_shapes():
    import inspect

    params = [list(inspect.signature(cls.forward).parameters) for cls in (InfoNCELoss, GradedInfoNCELoss)]
    assert params[0] == params[1] == ["self", "scores", "grades", "mask"]
    s = _scores(3, 5, seed=5)
    for loss in (InfoNCELoss(), GradedInfoNCELoss()):
        with pytest.raises(ValueError, match=r"grades must have the shape of scores \(3, 5\)"):
            loss(s, torch.arange(3))  # a [B] target column is not the signature
    with pytest.raises(ValueError, match=r"N >= B"):
        InfoNCELoss()(s.T, torch.zeros(5, 3, dtype=torch.long))


def test_infonce_is_masked_cross_entropy_on_the_diagonal_bit_for_bit():
    """The trainer's InfoNCE numbers: cross-entropy of the masked logits against target i for row i."""
    g = torch.Generator().manual_seed(0)
    s = torch.randn(4, 9, generator=g).requires_grad_(True)
    grades = torch.randint(0, 4, (4, 9), generator=g)
    grades[torch.arange(4), torch.arange(4)] = torch.tensor([3, 2, 3, 2])
    mask = grades > 0
    mask[torch.arange(4), torch.arange(4)] = False
    loss = InfoNCELoss(temperature=0.05)(s, grades, mask)
    (grad,) = torch.autograd.grad(loss, s)
    s2 = s.detach().clone().requires_grad_(True)
    ref = torch.nn.functional.cross_entropy((s2 / 0.05).masked_fill(mask, float("-inf")), torch.arange(4))
    (ref_grad,) = torch.autograd.grad(ref, s2)
    assert torch.equal(loss, ref) and torch.equal(grad, ref_grad)
    # the grades do not weigh single-positive InfoNCE: only the mask decides the negatives
    assert torch.equal(InfoNCELoss(temperature=0.05)(s.detach(), _diagonal(4, 9), mask), ref.detach())


def test_graded_default_weights_follow_the_grade_scale():
    from pyterrier_gradrel.training._losses import default_weights

    assert GradedInfoNCELoss().weights == {1: 1.0, 2: 3.0, 3: 7.0} == default_weights((0, 1, 2, 3))
    assert GradedInfoNCELoss(grades=(0, 1, 2, 3, 4)).weights == {1: 1.0, 2: 3.0, 3: 7.0, 4: 15.0}
    # a grade-4 candidate is a positive on a 0..4 scale, not a negative: the loss differs from one where it weighs 0
    s = _scores(1, 3, seed=5)
    grades = torch.tensor([[4, 1, 0]])
    loss = GradedInfoNCELoss(grades=(0, 1, 2, 3, 4))(s, grades)
    logp = torch.log_softmax(s / 0.05, dim=1)[0]
    assert torch.allclose(loss, -(15 * logp[0] + 1 * logp[1]) / 16)
