"""The distillation losses: formulas, edge cases and properties."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kdstudio.core.predict import kl_divergence
from kdstudio.core.train import TrainConfig
from kdstudio.core.train.losses import (
    LOSSES,
    Term,
    ce_loss,
    combined_loss,
    hidden_mse_loss,
    kd_loss,
    layer_mse_loss,
    loss_terms,
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


def _terms_of(config: TrainConfig) -> tuple[Term, ...]:
    return loss_terms(hard_labels=config.hard_labels, alpha=config.alpha,
                      temperature=config.temperature, hidden_mse=config.hidden_mse)


def test_the_config_names_the_terms_and_the_registry_builds_the_loss_by_hand_formula():
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    teacher = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    gold = torch.tensor([0, -100])
    batch = {"logits": logits, "teacher_probs": teacher, "gold": gold, "has_teacher": torch.tensor([True, True])}
    kd_run = _terms_of(TrainConfig(alpha=0.7, temperature=3.0))
    assert kd_run == (Term("kd", 0.7, {"temperature": 3.0}), Term("ce", pytest.approx(0.3)))
    parts = combined_loss(kd_run, batch)
    # by hand: T² · KL(p^(1/T) renormalised ‖ softmax(z/T)), mean over rows; CE on the gold row only
    def by_hand_kd(p, z, t):
        q = [math.exp(v / t) for v in z]
        q = [v / sum(q) for v in q]
        pt = [v ** (1 / t) for v in p]
        pt = [v / sum(pt) for v in pt]
        return t * t * sum(a * math.log(a / b) for a, b in zip(pt, q, strict=True))

    kd = sum(by_hand_kd(p, z, 3.0) for p, z in zip(teacher.tolist(), logits.tolist(), strict=True)) / 2
    ce = -math.log(math.exp(1.0) / (math.exp(1.0) + 1.0 + math.exp(-1.0)))
    assert float(parts["kd"]) == pytest.approx(kd, rel=1e-5)
    assert float(parts["ce"]) == pytest.approx(ce, rel=1e-5)
    assert float(parts["loss"]) == pytest.approx(0.7 * kd + 0.3 * ce, rel=1e-5)
    hard = _terms_of(TrainConfig(hard_labels=True))
    assert hard == (Term("ce", 1.0),)  # a hard-label run is cross-entropy alone
    hard_parts = combined_loss(hard, batch)
    assert set(hard_parts) == {"loss", "ce"} and float(hard_parts["loss"]) == pytest.approx(ce, rel=1e-5)
    with_hidden = _terms_of(TrainConfig(hidden_mse=0.5))
    assert [t.name for t in with_hidden] == ["kd", "ce", "hidden_mse"] and with_hidden[-1].weight == 0.5


def test_a_registered_term_is_looked_up_by_name():
    logits = torch.tensor([[2.0, 0.0]])
    batch = {"logits": logits, "gold": torch.tensor([1])}
    doubled = combined_loss([Term("ce", 2.0)], batch)
    assert float(doubled["loss"]) == pytest.approx(2 * float(ce_loss(logits, torch.tensor([1]))))
    with pytest.raises(KeyError):
        combined_loss([Term("no-such-loss")], batch)


def test_hidden_mse_is_zero_at_identity_and_ignores_padding():
    states = torch.randn(2, 4, 8)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    assert float(hidden_mse_loss(states, states, mask)) == 0.0
    other = states.clone()
    other[0, 3] += 100.0  # a padding position
    assert float(hidden_mse_loss(states, other, mask)) == 0.0
    other[1, 0] += 1.0
    assert float(hidden_mse_loss(states, other, mask)) == pytest.approx(8 / (5 * 8))


def test_layer_mse_pairs_each_student_layer_with_the_teacher_layer_at_the_same_depth():
    mask = torch.ones(1, 3, dtype=torch.long)
    teacher = [torch.full((1, 3, 4), float(i)) for i in range(5)]  # embeddings + 4 layers
    student = [torch.full((1, 3, 4), 2.0), torch.full((1, 3, 4), 4.0)]  # 2 layers ↔ teacher 2 and 4
    assert float(layer_mse_loss(student, teacher, mask)) == 0.0
    student[0] = torch.full((1, 3, 4), 3.0)
    assert float(layer_mse_loss(student, teacher, mask)) == pytest.approx(0.5)


def test_kd_at_temperature_one_is_the_one_kl():
    logits = torch.tensor([[1.0, 0.0, -1.0]])
    teacher = torch.tensor([[0.6, 0.3, 0.1]])
    kl = kl_divergence(teacher, torch.log_softmax(logits, -1))
    by_hand = sum(p * math.log(p / q) for p, q in zip(teacher[0].tolist(), torch.softmax(logits, -1)[0].tolist(), strict=True))
    assert float(kl[0]) == pytest.approx(by_hand, rel=1e-5)
    assert float(kl[0]) == pytest.approx(float(kd_loss(logits, teacher, 1.0)))
