"""Metric functions and the cascade: hand-computed values and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kdstudio.core.evaluate.cascade import cascade, default_thresholds
from kdstudio.core.evaluate.metrics import (
    accuracy,
    confusion_matrix,
    expected_calibration_error,
    kl_divergence,
    macro_f1,
    per_class_prf,
    percentile_ms,
)


def _probs(n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(k), size=n)


def test_ece_of_a_hand_computed_example_and_its_reliability_bins():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    ece, bins = expected_calibration_error(probs, [0, 1, 1])
    # confidences 0.9 (right), 0.6 (wrong), 0.7 (right), each alone in its bin
    assert ece == pytest.approx((0.1 + 0.6 + 0.3) / 3)
    assert len(bins) == 15 and sum(b["count"] for b in bins) == 3
    # bin b holds (b/15, (b+1)/15]: 0.6 -> bin 8, 0.7 -> bin 10, 0.9 -> bin 13
    filled = {i: (b["confidence"], b["accuracy"]) for i, b in enumerate(bins) if b["count"]}
    assert filled == {8: (0.6, 0.0), 10: (0.7, 1.0), 13: (0.9, 1.0)}
    assert bins[8]["hi"] == pytest.approx(0.6) and bins[13]["lo"] == pytest.approx(13 / 15)
    assert all(b["confidence"] is None for b in bins if not b["count"])


def test_ece_is_zero_for_confident_right_answers_and_one_for_confident_wrong_ones():
    eye = np.eye(3)
    assert expected_calibration_error(eye, [0, 1, 2])[0] == pytest.approx(0.0)
    assert expected_calibration_error(eye, [1, 2, 0])[0] == pytest.approx(1.0)
    assert expected_calibration_error(np.zeros((0, 3)), [])[0] is None


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 60), st.integers(2, 6), st.integers(0, 10_000))
def test_ece_lies_in_0_1_and_bins_hold_every_example(n, k, seed):
    probs = _probs(n, k, seed)
    gold = np.random.default_rng(seed + 1).integers(0, k, n)
    ece, bins = expected_calibration_error(probs, gold)
    assert 0.0 <= ece <= 1.0
    assert sum(b["count"] for b in bins) == n
    for b in bins:
        if b["count"]:
            assert b["lo"] - 1e-9 <= b["confidence"] <= b["hi"] + 1e-9


def test_confusion_rows_are_the_first_argument():
    m = confusion_matrix([0, 0, 1, 2], [0, 1, 1, 1], 3)
    assert m == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


@settings(max_examples=60, deadline=None)
@given(arrays(np.int64, st.integers(0, 50), elements=st.integers(0, 3)), st.integers(0, 1000))
def test_confusion_sums_to_n_and_its_diagonal_is_accuracy(pred, seed):
    gold = np.random.default_rng(seed).integers(0, 4, len(pred))
    m = np.array(confusion_matrix(pred, gold, 4))
    assert m.sum() == len(pred)
    if len(pred):
        assert np.trace(m) / len(pred) == pytest.approx(accuracy(pred, gold))


def test_per_class_precision_recall_f1_by_hand():
    rows = per_class_prf([0, 0, 1, 1, 2], [0, 1, 1, 1, 2], ["a", "b", "c"])
    a, b, c = rows
    assert (a["precision"], a["recall"], a["support"]) == (0.5, 1.0, 1)
    assert a["f1"] == pytest.approx(2 / 3)
    assert (b["precision"], b["recall"], b["support"]) == (1.0, pytest.approx(2 / 3), 3)
    assert b["f1"] == pytest.approx(0.8)
    assert (c["precision"], c["recall"], c["f1"]) == (1.0, 1.0, 1.0)
    assert macro_f1(rows) == pytest.approx((2 / 3 + 0.8 + 1) / 3)
    empty = per_class_prf([0], [0], ["a", "b"])[1]
    assert (empty["precision"], empty["recall"], empty["f1"], empty["support"]) == (
        0.0,
        0.0,
        0.0,
        0,
    )


def test_kl_is_zero_for_identical_distributions_and_matches_a_hand_value():
    p = _probs(5, 4, 0)
    assert np.allclose(kl_divergence(p, p), 0.0, atol=1e-12)
    value = kl_divergence(np.array([[0.5, 0.5]]), np.array([[0.25, 0.75]]))[0]
    assert value == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3))
    assert kl_divergence(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))[0] == pytest.approx(
        math.log(2)
    )


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30), st.integers(2, 6), st.integers(0, 10_000))
def test_kl_is_never_negative(n, k, seed):
    assert (kl_divergence(_probs(n, k, seed), _probs(n, k, seed + 1)) >= -1e-12).all()


def test_percentiles_of_latency_samples():
    assert percentile_ms([1, 2, 3, 4, 100], 50) == 3
    assert percentile_ms([], 50) is None


def test_cascade_by_hand_picks_the_cheapest_threshold_within_one_point():
    conf = [0.95, 0.9, 0.55, 0.4]
    student = [0, 1, 1, 0]
    teacher = [0, 1, 0, 1]
    gold = [0, 1, 0, 1]  # the student is wrong on its two least confident cases
    plan = cascade(
        conf,
        student,
        teacher,
        gold,
        thresholds=[0.0, 0.5, 0.6, 1.0],
        teacher_cost_usd=0.002,
        student_ms=1.0,
        teacher_ms=500.0,
    )
    rows = {r["threshold"]: r for r in plan["rows"]}
    assert rows[0.0]["share_to_teacher"] == 0 and rows[0.0]["accuracy"] == 0.5
    assert rows[0.5]["share_to_teacher"] == 0.25 and rows[0.5]["accuracy"] == 0.75
    assert rows[0.6]["share_to_teacher"] == 0.5 and rows[0.6]["accuracy"] == 1.0
    assert rows[1.0]["share_to_teacher"] == 1.0 and rows[1.0]["accuracy"] == 1.0
    assert rows[0.6]["cost_per_1m_usd"] == pytest.approx(0.5 * 0.002 * 1e6)
    assert rows[0.6]["mean_ms"] == pytest.approx(1.0 + 0.5 * 500.0)
    assert plan["teacher_accuracy"] == 1.0 and plan["best"]["threshold"] == 0.6


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(0, 10_000))
def test_cascade_share_grows_with_the_threshold_and_the_ends_are_student_and_teacher(n, seed):
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.3, 0.999, n)
    student, teacher, gold = (rng.integers(0, 3, n) for _ in range(3))
    plan = cascade(conf, student, teacher, gold)
    shares = [r["share_to_teacher"] for r in plan["rows"]]
    assert shares == sorted(shares) and shares[0] == 0.0 and shares[-1] == 1.0
    assert plan["rows"][0]["accuracy"] == pytest.approx(np.mean(student == gold))
    assert plan["rows"][-1]["accuracy"] == pytest.approx(np.mean(teacher == gold))
    best = plan["best"]
    assert best is not None and best["accuracy"] >= plan["teacher_accuracy"] - 0.01 - 1e-9
    cheaper = [r for r in plan["rows"] if r["share_to_teacher"] < best["share_to_teacher"]]
    assert all(r["accuracy"] < plan["teacher_accuracy"] - 0.01 for r in cheaper)
    assert len(default_thresholds()) == 21
