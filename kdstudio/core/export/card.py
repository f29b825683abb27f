"""The model card (README.md) written beside an exported student."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kdstudio.core.evaluate.result import EvalReport


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def model_card(
    *,
    name: str,
    fmt: str,
    run: dict[str, Any],
    meta: dict[str, Any],
    teacher: dict[str, Any] | None,
    project: dict[str, Any],
    report: EvalReport | None,
    files: list[str],
) -> str:
    """Markdown: what the model is, its teacher and data, its metrics, how to use it, its limits."""
    labels = meta["labels"]
    config = run.get("config") or {}
    summary = run.get("summary") or {}
    teacher_line = (
        f"`{teacher['spec']}` (teacher #{teacher['id']})"
        if teacher
        else "none (trained on gold labels)"
    )
    if config.get("hard_labels"):
        method = "cross-entropy on gold labels only (no distillation)"
    else:
        method = (
            f"knowledge distillation: KL(teacher_T ‖ student_T)·T² with temperature "
            f"{config.get('temperature')} and weight alpha = {config.get('alpha')}, plus "
            f"(1 − alpha)·cross-entropy on gold labels where they exist"
        )
    splits = project["splits"]
    lines = [
        f"# {name}",
        "",
        f"A `{meta['spec']}` text classifier distilled with KD Studio from project "
        f"**{project['name']}** (run #{run['id']}). "
        f"Format: {'Hugging Face transformers folder' if fmt == 'hf' else 'ONNX'}.",
        "",
        "## Labels",
        "",
        ", ".join(f"`{label}`" for label in labels),
        "",
        "## Teacher and training",
        "",
        f"- Teacher: {teacher_line}",
        f"- Student: `{meta['spec']}` "
        f"({_fmt(report.student_params if report else summary.get('params'), ',')} parameters)",
        f"- Objective: {method}",
        f"- Training: {config.get('epochs')} epochs, batch size {config.get('batch_size')}, learning rate "
        f"{config.get('lr') or 'default'}, seed {config.get('seed')}, inputs cut at {meta['max_length']} tokens; "
        f"best checkpoint at step {summary.get('best_step')}",
        "",
        "## Data",
        "",
        f"- Examples: {splits.get('train', 0)} train, {splits.get('valid', 0)} valid, "
        f"{splits.get('test', 0)} test, {splits.get('unlabeled', 0)} unlabeled "
        f"({summary.get('n_train', 'n/a')} rows used for training)",
        f"- Sources: {', '.join(sorted({i.get('file', '?') for i in project.get('imports', [])})) or 'n/a'}",
        "",
        "## Evaluation (test split)",
        "",
    ]
    if report:
        lines += [
            "| metric | student | teacher |",
            "|---|---|---|",
            f"| accuracy | {_fmt(report.student_accuracy)} | {_fmt(report.teacher_accuracy)} |",
            f"| macro F1 | {_fmt(report.student_macro_f1)} | {_fmt(report.teacher_macro_f1)} |",
            f"| ECE (15 bins) | {_fmt(report.student_ece)} | {_fmt(report.teacher_ece)} |",
            f"| parameters | {_fmt(report.student_params, ',')} | {_fmt(report.teacher_params, ',')} |",
            f"| size on disk (MB) | {_fmt(report.student_size_mb, '.2f')} "
            f"| {_fmt(report.teacher_size_mb, '.2f')} |",
            f"| latency p50, batch 1 (ms) | {_fmt(report.student_latency_ms_p50, '.2f')} | "
            f"{_fmt(report.teacher_latency_ms_p50, '.2f')} |",
            f"| throughput, batch 64 (/s) | {_fmt(report.student_throughput_per_s, '.0f')} | "
            f"{_fmt(report.teacher_throughput_per_s, '.0f')} |",
            "",
            f"- {report.n_test} test examples; agreement with the teacher "
            f"{_fmt(report.agreement)}, retention (student / teacher accuracy) "
            f"{_fmt(report.retention)}, mean KL(teacher ‖ student) {_fmt(report.kl, '.4f')}, "
            f"speed-up {_fmt(report.speedup, '.1f')}"
            f"{'×' if report.speedup else ''} on {report.device or 'n/a'}",
        ]
        plan = report.best_cascade
        if plan:
            lines.append(
                f"- Cascade: sending the cases where the student's confidence is below "
                f"{plan.threshold:.2f} to the teacher ({plan.share_to_teacher:.0%} of traffic) "
                f"gives accuracy {plan.accuracy:.3f}"
            )
    else:
        lines.append("Not evaluated yet (run `kdstudio eval`).")
    if fmt == "hf":
        usage = [
            "```python",
            "from transformers import pipeline",
            "",
            'classify = pipeline("text-classification", model="PATH/TO/THIS/FOLDER")',
            'classify("some text", truncation=True)',
            "```",
        ]
    else:
        usage = [
            "```python",
            "import numpy as np, onnxruntime as ort",
            "from transformers import AutoTokenizer",
            "",
            'tokenizer = AutoTokenizer.from_pretrained("PATH/TO/THIS/FOLDER")',
            'session = ort.InferenceSession("PATH/TO/THIS/FOLDER/model.onnx")',
            'enc = tokenizer(["some text"], padding=True, truncation=True, '
            f'max_length={meta["max_length"]}, return_tensors="np")',
            'logits = session.run(None, {"input_ids": enc["input_ids"].astype(np.int64),',
            '                            "attention_mask": enc["attention_mask"].astype(np.int64)})[0]',
            "```",
            "",
            "Inputs `input_ids` and `attention_mask` (int64, batch × sequence, both axes dynamic); "
            "output `logits` (batch × labels, in the order above).",
        ]
    lines += [
        "",
        "## How to use",
        "",
        *usage,
        "",
        "## Intended use",
        "",
        f"Classifying short texts into the {len(labels)} labels above, in the same domain and language as the "
        "project's data, where the teacher's answers were good enough to learn from. The student is meant to "
        "replace the teacher where speed and cost matter; the cascade figure above shows how much traffic "
        "to route back to the teacher to stay close to its accuracy.",
        "",
        "## Limits",
        "",
        "- The student learned the teacher's behaviour, including its mistakes and biases; it is no better "
        "than the teacher and the data it saw.",
        "- Metrics come from the project's test split only; texts from another domain, language or time "
        "may score lower. Check a sample of your own traffic before relying on it.",
        f"- Inputs longer than {meta['max_length']} tokens are cut.",
        "- Confidence values are calibrated only as well as the ECE above says.",
        "",
        "## Files",
        "",
        *[f"- `{f}`" for f in files],
        "",
    ]
    return "\n".join(lines)
