"""A generation report as text for the command line (``kdstudio eval`` on a generation project)."""

from __future__ import annotations

from typing import Any

from kdstudio.core.evaluate.generation_report import CorpusScores, GenerationReport

TIMING = {
    "measured": "measured here, interleaved with the student",
    "recorded": "recorded when its completions were harvested",
}


def _num(value: Any, spec: str = ".3f") -> str:
    return "—" if value is None else f"{value:{spec}}"


def _scores_line(name: str, scores: CorpusScores | None) -> str:
    if scores is None:
        return f"{name:26}{'—':>9}"
    return (f"{name:26}{_num(scores.rouge_l):>9}{_num(scores.chrf):>9}{_num(scores.bleu):>9}"
            f"{_num(scores.exact):>9}{_num(scores.length_ratio, '.2f'):>9}{scores.n:>7}")


def format_generation_report(report: GenerationReport) -> str:
    """A readable multi-line summary of a generation report."""
    r = report
    lines = [
        f"run #{r.run} ({r.student}) against teacher #{r.teacher} ({r.teacher_spec}), {r.n_test} test prompts "
        f"({r.n_teacher} with the teacher's completion, {r.n_references} with references)",
        "",
        f"{'':26}{'ROUGE-L':>9}{'chrF':>9}{'BLEU':>9}{'exact':>9}{'length':>9}{'n':>7}",
        _scores_line("student vs teacher", r.student_vs_teacher),
        _scores_line("student vs references", r.student_vs_references),
        _scores_line("teacher vs references", r.teacher_vs_references),
    ]
    if r.retention is not None:
        lines.append(f"retention (student / teacher ROUGE-L vs references): {r.retention:.3f}")
    lines += [
        "",
        f"{'':26}{'student':>12}{'teacher':>12}",
        f"{'parameters':26}{_num(r.student_params, ','):>12}{_num(r.teacher_params, ','):>12}",
        f"{'size on disk (MB)':26}{_num(r.student_size_mb, '.2f'):>12}{_num(r.teacher_size_mb, '.2f'):>12}",
        f"{'latency p50 (ms/completion)':26}{_num(r.student_latency_ms_p50, '.1f'):>12}"
        f"{_num(r.teacher_latency_ms_p50, '.1f'):>12}",
        f"{'latency p95 (ms/completion)':26}{_num(r.student_latency_ms_p95, '.1f'):>12}"
        f"{_num(r.teacher_latency_ms_p95, '.1f'):>12}",
        f"{'tokens/s':26}{_num(r.student_tokens_per_s, '.0f'):>12}{_num(r.teacher_tokens_per_s, '.0f'):>12}",
        "",
        f"student timed at batch 1 on {r.speed_prompts or 0} test prompts on {r.device or '?'}"
        + (f" ({r.threads} thread{'s' if r.threads > 1 else ''})" if r.threads else "")
        + f"; teacher {TIMING.get(r.teacher_timing or '', 'not timed')}"
        + (f"; speed-up {r.speedup:.1f}x" if r.speedup else ""),
    ]
    if r.teacher_cost_per_1m_usd:
        lines.append(f"teacher cost: ${r.teacher_cost_per_1m_usd:,.2f} per 1M completions")
    if r.scores_written:
        lines.append(f"per-example scores written for {r.scores_written} test completions")
    b = r.best_cascade
    if b is not None and r.cascade is not None:
        cost = f", ${b.cost_per_1m_usd:,.2f} per 1M" if b.cost_per_1m_usd else ""
        lines += [
            "",
            f"cascade: send prompts with the student's mean token log-probability < {b.threshold:.3f} to the "
            f"teacher ({b.share_to_teacher:.0%} of traffic) for ROUGE-L {_num(b.score)} vs {r.cascade.against}"
            f"{cost} (teacher alone {_num(r.cascade.teacher_score)}, student alone {_num(r.cascade.student_score)})",
        ]
    return "\n".join(lines)


__all__ = ["format_generation_report"]
