"""Scores of generated text: a student's completion against the teacher's and against references.

Every score is a fraction in [0, 1] (higher is better) except ``length_ratio``:

- ``rouge_l``: ROUGE-L F-measure (longest common subsequence of words), from Google's
  ``rouge-score`` package; against several references, the best one counts (``score_multi``).
- ``chrf``: chrF (character n-gram F-score, β = 2) from ``sacrebleu``, divided by 100; several
  references are scored together, as sacrebleu does.
- ``bleu``: corpus BLEU from ``sacrebleu`` / 100 (corpus level only: sentence BLEU is too noisy to
  sort by), for comparing with published E2E figures.
- ``exact``: 1 when the text equals one of the targets after collapsing whitespace.
- ``length_ratio``: words in the text over words in the target closest in length (1 is ideal).

:func:`score_completion` gives one example's scores against the teacher's completion and against
the references (each part only when there is something to score against); :func:`primary_score` is
the one number the comparison viewer sorts by; :func:`corpus_scores` averages a whole split, with
chrF and BLEU computed at corpus level.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

METRICS = ("rouge_l", "chrf", "exact", "length_ratio")


@cache
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"])


@cache
def _chrf() -> Any:
    from sacrebleu.metrics import CHRF

    return CHRF()


def _normal(text: str) -> str:
    return " ".join(text.split())


def _closest_length(n: int, targets: Sequence[str]) -> int:
    return min((len(t.split()) for t in targets), key=lambda m: (abs(m - n), m))


def score_text(text: str, targets: Sequence[str]) -> dict[str, float]:
    """``text`` scored against ``targets`` (one or more; at least one)."""
    if not targets:
        raise ValueError("score_text needs at least one target")
    rouge = _rouge().score_multi(list(targets), text)["rougeL"].fmeasure
    chrf = _chrf().sentence_score(text, list(targets)).score / 100.0
    exact = float(_normal(text) in {_normal(t) for t in targets})
    n = len(text.split())
    closest = _closest_length(n, targets)
    ratio = n / closest if closest else float(n == 0)
    return {"rouge_l": round(float(rouge), 6), "chrf": round(float(chrf), 6), "exact": exact,
            "length_ratio": round(ratio, 6)}


def rouge_l(text: str, targets: Sequence[str]) -> float:
    """ROUGE-L F-measure of ``text`` against the best of ``targets`` (at least one)."""
    return round(float(_rouge().score_multi(list(targets), text)["rougeL"].fmeasure), 6)


def score_completion(text: str, *, teacher: str | None, references: Sequence[str] = ()) -> dict[str, dict[str, float]]:
    """``{"teacher": scores, "references": scores}``; a part is left out when there is nothing to
    score against (no teacher completion, no references)."""
    out: dict[str, dict[str, float]] = {}
    if teacher is not None:
        out["teacher"] = score_text(text, [teacher])
    refs = [r for r in references if r is not None]
    if refs:
        out["references"] = score_text(text, refs)
    return out


def primary_score(scores: dict[str, dict[str, float]] | None) -> float | None:
    """ROUGE-L against the teacher's completion, else against the references, else None."""
    if not scores:
        return None
    part = scores.get("teacher") or scores.get("references")
    return None if part is None else part["rouge_l"]


def corpus_scores(texts: Sequence[str], targets: Sequence[Sequence[str]]) -> dict[str, float]:
    """A split's scores: mean ROUGE-L and exact match, corpus chrF and BLEU (several references
    per example allowed, their number may vary) and the corpus length ratio. Examples without a
    target are skipped; ``n`` says how many were scored."""
    from sacrebleu.metrics import BLEU

    pairs = [(t, [r for r in refs if r is not None]) for t, refs in zip(texts, targets, strict=True)]
    pairs = [(t, refs) for t, refs in pairs if refs]
    if not pairs:
        return {"n": 0}
    hyps = [t for t, _ in pairs]
    width = max(len(refs) for _, refs in pairs)
    streams = [[refs[i] if i < len(refs) else None for _, refs in pairs] for i in range(width)]
    rouge = [_rouge().score_multi(refs, t)["rougeL"].fmeasure for t, refs in pairs]
    exact = [float(_normal(t) in {_normal(r) for r in refs}) for t, refs in pairs]
    words = sum(len(t.split()) for t in hyps)
    closest = sum(_closest_length(len(t.split()), refs) for t, refs in pairs)
    return {
        "n": len(pairs),
        "rouge_l": round(sum(rouge) / len(rouge), 6),
        "chrf": round(_chrf().corpus_score(hyps, streams).score / 100.0, 6),
        "bleu": round(BLEU().corpus_score(hyps, streams).score / 100.0, 6),
        "exact": round(sum(exact) / len(exact), 6),
        "length_ratio": round(words / closest, 6) if closest else 0.0,
    }


__all__ = ["METRICS", "corpus_scores", "primary_score", "rouge_l", "score_completion", "score_text"]
