"""Text scores for generation: against the teacher, against several references, at corpus level."""

from __future__ import annotations

import pytest

from kdstudio.core.text_metrics import corpus_scores, primary_score, score_completion, score_text


def test_identical_text_scores_one_and_unrelated_text_scores_low():
    same = score_text("Alimentum is a cheap pub.", ["Alimentum is a cheap pub."])
    assert same == {"rouge_l": 1.0, "chrf": 1.0, "exact": 1.0, "length_ratio": 1.0}
    other = score_text("The weather is nice today.", ["Alimentum is a cheap pub."])
    assert other["rouge_l"] < 0.3 and other["chrf"] < 0.3 and other["exact"] == 0.0


def test_several_references_the_best_one_counts_and_the_closest_length_is_used():
    refs = ["A pub called Alimentum.", "Alimentum is a cheap pub in the city centre near the river."]
    one = score_text("Alimentum is a cheap pub in the city centre.", refs[1:])
    both = score_text("Alimentum is a cheap pub in the city centre.", refs)
    assert both["rouge_l"] == pytest.approx(one["rouge_l"])
    assert both["length_ratio"] == pytest.approx(9 / 12)
    assert score_text("  a pub called   Alimentum. ", ["x", "a pub called Alimentum."])["exact"] == 1.0


def test_completion_parts_and_primary_score():
    scores = score_completion("a b c", teacher="a b d", references=["a b c"])
    assert set(scores) == {"teacher", "references"} and scores["references"]["exact"] == 1.0
    assert primary_score(scores) == scores["teacher"]["rouge_l"]
    only_refs = score_completion("a b c", teacher=None, references=["a b c", None])
    assert set(only_refs) == {"references"} and primary_score(only_refs) == 1.0
    assert score_completion("a", teacher=None) == {} and primary_score({}) is None


def test_corpus_scores_take_a_varying_number_of_references_and_skip_rows_without_any():
    texts = ["the cat sat on the mat", "a dog barked", "no target here"]
    targets = [["the cat sat on the mat", "a cat was sitting"], ["the dog barked loudly"], []]
    out = corpus_scores(texts, targets)
    assert out["n"] == 2 and 0.5 < out["rouge_l"] < 1.0 and 0.0 < out["chrf"] < 1.0 and out["exact"] == 0.5
    assert 0.0 < out["bleu"] < 1.0 and out["length_ratio"] == pytest.approx(9 / 10)
    assert corpus_scores(["x"], [[]]) == {"n": 0}
