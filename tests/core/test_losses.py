"""The distillation losses: formulas, edge cases and properties."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kdstudio.core.train.losses import (
    LOSSES,
    ce_loss,
    distillation_loss,
    hidden_mse_loss,
    kd_loss,
    kl_per_example,
    temper,
)

logit_rows = st.lists(st.lists(st.floats(-8, 8), min_size=3, max_size=3), min_size=1, max_size=4)
temperatures = st.floats(0.5, 8.0)


def test_losses_are_registered_by_name():
    assert {"kd", "ce", "hidden_mse"} <= set(LOSSES)
    assert LOSSES["kd"] is kd_loss


@settings(max_examples=40, deadline=None)
@given(logit_rows, temperatures)
def test_kd_of_identical_distributions_is_zero(rows, t):
    logits = torch.tensor(rows, dtype=torch.float64)
    teacher = torch.softmax(logits, -1)
    assert abs(float(kd_loss(logits, teacher, t))) < 1e-5


@settings(max_examples=40, deadline=None)
@given(logit_rows, logit_rows, temperatures)
def test_kd_is_never_negative(a, b, t):
    n = min(len(a), len(b))
    student, teacher = torch.tensor(a[:n]), torch.softmax(torch.tensor(b[:n]), -1)
    assert float(kd_loss(student, teacher, t)) >= -1e-5


@settings(max_examples=40, deadline=None)
@given(logit_rows, temperatures)
def test_tempering_probabilities_equals_softmax_of_scaled_logits(rows, t):
    logits = torch.tensor(rows, dtype=torch.float64)
    assert torch.allclose(
        temper(torch.softmax(logits, -1), t), torch.softmax(logits / t, -1), atol=1e-6
    )


def test_kd_hand_computed_values():
    teacher, student = torch.tensor([[0.8, 0.2]]), torch.zeros(1, 2)
    at_1 = 0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5)
    assert float(kd_loss(student, teacher, 1.0)) == pytest.approx(at_1, abs=1e-6)
    p = [
        math.sqrt(0.8) / (math.sqrt(0.8) + math.sqrt(0.2)),
        math.sqrt(0.2) / (math.sqrt(0.8) + math.sqrt(0.2)),
    ]
    at_2 = 4 * (p[0] * math.log(p[0] / 0.5) + p[1] * math.log(p[1] / 0.5))
    assert float(kd_loss(student, teacher, 2.0)) == pytest.approx(at_2, abs=1e-6)


@pytest.mark.parametrize("t", [1.0, 2.0, 4.0])
def test_kd_gradient_is_t_times_the_tempered_difference(t):
    student = torch.tensor([[1.0, -0.5, 0.2], [0.0, 2.0, -1.0]], requires_grad=True)
    teacher = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    kd_loss(student, teacher, t).backward()
    expected = t * (torch.softmax(student.detach() / t, -1) - temper(teacher, t)) / 2
    assert torch.allclose(student.grad, expected, atol=1e-6)


def test_zero_probabilities_stay_zero_and_do_not_make_nan():
    teacher = torch.tensor([[1.0, 0.0, 0.0]])
    assert torch.equal(temper(teacher, 3.0), teacher)
    assert torch.isfinite(kd_loss(torch.tensor([[0.0, 1.0, 2.0]]), teacher, 3.0))


def test_kd_weight_leaves_out_rows_without_a_teacher():
    student = torch.tensor([[0.0, 0.0], [5.0, -5.0]])
    teacher = torch.tensor([[0.5, 0.5], [0.0, 1.0]])
    only_first = kd_loss(student, teacher, 1.0, torch.tensor([1.0, 0.0]))
    assert float(only_first) == pytest.approx(0.0, abs=1e-6)
    assert float(kd_loss(student, teacher, 1.0, torch.tensor([0.0, 0.0]))) == 0.0


def test_ce_ignores_rows_without_gold_and_is_zero_when_none_have_it():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    full = ce_loss(logits[:1], torch.tensor([0]))
    assert float(ce_loss(logits, torch.tensor([0, -100]))) == pytest.approx(float(full))
    assert float(ce_loss(logits, torch.tensor([-100, -100]))) == 0.0


def test_total_is_alpha_kd_plus_one_minus_alpha_ce():
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    teacher = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    gold = torch.tensor([0, -100])
    parts = distillation_loss(logits, teacher, gold, temperature=3.0, alpha=0.7)
    expected = 0.7 * kd_loss(logits, teacher, 3.0) + 0.3 * ce_loss(logits, gold)
    assert float(parts["loss"]) == pytest.approx(float(expected))
    hard = distillation_loss(logits, teacher, gold, temperature=3.0, alpha=0.7, hard_labels=True)
    assert float(hard["loss"]) == pytest.approx(float(ce_loss(logits, gold)))
    assert float(hard["kd"]) == 0.0


def test_hidden_mse_is_zero_at_identity_and_ignores_padding():
    states = torch.randn(2, 4, 8)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    assert float(hidden_mse_loss(states, states, mask)) == 0.0
    other = states.clone()
    other[0, 3] += 100.0  # a padding position
    assert float(hidden_mse_loss(states, other, mask)) == 0.0
    other[1, 0] += 1.0
    assert float(hidden_mse_loss(states, other, mask)) == pytest.approx(8 / (5 * 8))


def test_kl_per_example_matches_kd_at_temperature_one():
    logits = torch.tensor([[1.0, 0.0, -1.0]])
    teacher = torch.tensor([[0.6, 0.3, 0.1]])
    assert float(kl_per_example(teacher, logits)[0]) == pytest.approx(
        float(kd_loss(logits, teacher, 1.0))
    )
