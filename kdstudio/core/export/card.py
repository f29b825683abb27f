"""The model card (README.md) written beside an exported student: :func:`model_card` for a
classifier, :func:`generation_model_card` for a generation student."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kdstudio.core.evaluate.generation_report import CorpusScores, GenerationReport
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
    int8: dict[str, Any] | None = None,
) -> str:
    """Markdown: what the model is, its teacher and data, its metrics, how to use it, its limits.
    ``int8``: the ``int8_*`` and ``onnx_bytes`` figures of an export with an int8 model beside the float one."""
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
        if int8:
            usage += ["", *_int8_section(int8)]
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


def _int8_section(int8: dict[str, Any]) -> list[str]:
    """The card's lines on ``model_int8.onnx``: size, agreement with the float model, how to load it."""
    from kdstudio.core.export.int8 import INT8_FILE, INT8_MIN_AGREEMENT

    ops = {
        "all": "every operator onnxruntime quantizes (matrix products, embedding lookups, convolutions, LSTMs)",
        "all-per-channel": "every operator onnxruntime quantizes (matrix products, embedding lookups, "
        "convolutions, LSTMs), with one scale per output channel (one scale per weight lost too much agreement)",
        "matmul+embeddings": "the matrix products and embedding lookups only (quantizing every operator lost "
        "too much agreement)",
    }.get(int8.get("int8_ops") or "", "the embedding tables only (quantizing more lost too much agreement)")
    where = "test texts" if int8.get("int8_texts") == "test" else "project texts"
    size = _fmt(int8["int8_bytes"] / 1e6, ".2f")
    float_size = f"{int8['onnx_bytes'] / 1e6:.2f} MB" if int8.get("onnx_bytes") else "n/a"
    return [
        f"### The int8 model: `{INT8_FILE}`",
        "",
        f"`{INT8_FILE}` ({size} MB, against {float_size} for `model.onnx`) is the same model with the weights "
        f"of {ops} stored as 8-bit integers (onnxruntime's dynamic quantization). Its top label agrees with "
        f"the float model's on {_fmt(int8['int8_agreement'], '.2%')} of {int8['int8_checked_examples']:,} {where} "
        f"(at least {INT8_MIN_AGREEMENT:.1%} is required; largest output difference "
        f"{_fmt(int8.get('int8_max_abs_diff'), '.3f')}). It takes the same inputs and gives the same output:",
        "",
        "```python",
        f'session = ort.InferenceSession("PATH/TO/THIS/FOLDER/{INT8_FILE}")',
        'logits = session.run(None, {"input_ids": enc["input_ids"].astype(np.int64),',
        '                            "attention_mask": enc["attention_mask"].astype(np.int64)})[0]',
        "```",
    ]


def _scores_row(name: str, scores: CorpusScores | None) -> str:
    if scores is None:
        return f"| {name} | n/a | n/a | n/a | n/a | n/a |"
    return (f"| {name} | {_fmt(scores.rouge_l)} | {_fmt(scores.chrf)} | {_fmt(scores.bleu)} | {_fmt(scores.exact)} "
            f"| {_fmt(scores.length_ratio, '.2f')} |")


def generation_model_card(
    *,
    name: str,
    fmt: str,
    run: dict[str, Any],
    meta: dict[str, Any],
    teacher: dict[str, Any] | None,
    project: dict[str, Any],
    report: GenerationReport | None,
    files: list[str],
) -> str:
    """Markdown for a generation student: task, data, teacher, student, scores against the teacher
    and the references, latency, how to call it with ``pipeline``, its limits; and, for a Claude
    teacher, the line on Anthropic's terms (:data:`~kdstudio.core.teachers.claude.terms.CLAUDE_TERMS_LINE`)."""
    from kdstudio.core.export.generation import student_max_new_tokens, student_template
    from kdstudio.core.teachers.claude.terms import CLAUDE_TERMS_LINE, teaches_with_claude

    config = run.get("config") or {}
    summary = run.get("summary") or {}
    template, max_new = student_template(meta), student_max_new_tokens(meta)
    layout = "the prompt followed by a newline" if template == "{prompt}\n" else f"`{template!r}` with the prompt in it"
    splits = project["splits"]
    teacher_line = f"`{teacher['spec']}` (teacher #{teacher['id']})" if teacher else "none (trained on references)"
    params = report.student_params if report else summary.get("params")
    lines = [
        f"# {name}",
        "",
        f"A `{meta['spec']}` text generator (a causal language model) distilled with KD Studio from project "
        f"**{project['name']}** (run #{run['id']}): it learned to write the teacher's completions for the "
        "project's prompts. Format: Hugging Face transformers folder.",
        "",
        "## Teacher and training",
        "",
        f"- Teacher: {teacher_line}",
        f"- Student: `{meta['spec']}` ({_fmt(params, ',')} parameters)",
        f"- Training: {config.get('epochs')} epochs, batch size {config.get('batch_size')}, learning rate "
        f"{config.get('lr') or 'default'}, seed {config.get('seed')}; best checkpoint at step "
        f"{summary.get('best_step')}",
        f"- Decoding: greedy, at most {max_new} new tokens, stops at the end-of-text token "
        "(`generation_config.json`)",
        "",
        "## Data",
        "",
        f"- Prompts: {splits.get('train', 0)} train, {splits.get('valid', 0)} valid, {splits.get('test', 0)} test, "
        f"{splits.get('unlabeled', 0)} unlabeled",
        f"- Sources: {', '.join(sorted({i.get('file', '?') for i in project.get('imports', [])})) or 'n/a'}",
        "",
        "## Evaluation (test split)",
        "",
    ]
    if report:
        lines += [
            "| | ROUGE-L | chrF | BLEU | exact match | length ratio |",
            "|---|---|---|---|---|---|",
            _scores_row("student vs teacher", report.student_vs_teacher),
            _scores_row("student vs references", report.student_vs_references),
            _scores_row("teacher vs references", report.teacher_vs_references),
            "",
            "| | student | teacher |",
            "|---|---|---|",
            f"| parameters | {_fmt(report.student_params, ',')} | {_fmt(report.teacher_params, ',')} |",
            f"| size on disk (MB) | {_fmt(report.student_size_mb, '.2f')} | {_fmt(report.teacher_size_mb, '.2f')} |",
            f"| latency per completion, p50 (ms) | {_fmt(report.student_latency_ms_p50, '.1f')} "
            f"| {_fmt(report.teacher_latency_ms_p50, '.1f')} |",
            f"| tokens/s | {_fmt(report.student_tokens_per_s, '.0f')} | {_fmt(report.teacher_tokens_per_s, '.0f')} |",
            "",
            f"- {report.n_test} test prompts ({report.n_references} with references); retention (student / teacher "
            f"ROUGE-L against the references) {_fmt(report.retention)}; student timed at batch 1 on "
            f"{report.device or 'n/a'}, teacher {report.teacher_timing or 'not timed'}",
        ]
        plan = report.best_cascade
        if plan and report.cascade is not None:
            lines.append(
                f"- Cascade: sending the prompts where the student's mean token log-probability is below "
                f"{plan.threshold:.3f} to the teacher ({plan.share_to_teacher:.0%} of traffic) gives ROUGE-L "
                f"{_fmt(plan.score)} against the {report.cascade.against}"
            )
    else:
        lines.append("Not evaluated yet (run `kdstudio eval`).")
    lines += [
        "",
        "## How to use",
        "",
        f"The student reads {layout}, and writes the completion:",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        'generate = pipeline("text-generation", model="PATH/TO/THIS/FOLDER")',
        'prompt = "your prompt\\n"' if template == "{prompt}\n"
        else f"prompt = {template!r}.replace(\"{{prompt}}\", \"your prompt\")",
        'completion = generate(prompt, return_full_text=False)[0]["generated_text"].strip()',
        "```",
        "",
        "`generation_config.json` holds the decoding settings KD Studio evaluated it with (greedy); passing "
        "other settings changes what it writes.",
        "",
        "## Intended use",
        "",
        "Writing completions for prompts like the project's, in the same domain and language, where the "
        "teacher's completions were good enough to learn from; the student replaces the teacher where speed and "
        "cost matter, and the cascade figure above shows how much traffic to route back to it.",
    ]
    if teacher and teaches_with_claude(teacher.get("spec")):
        lines += ["", CLAUDE_TERMS_LINE]
    lines += [
        "",
        "## Limits",
        "",
        "- The student imitates the teacher's completions, mistakes and biases included; it is no better than the "
        "teacher and the prompts it saw, and it can write fluent text that is wrong.",
        "- Scores come from the project's test prompts only; prompts from another domain, language or format "
        "may fare worse. Check a sample of your own traffic before relying on it.",
        f"- It writes at most {max_new} new tokens; a longer completion is cut.",
        "- Its mean token log-probability is a rough confidence, not a calibrated one.",
        "",
        "## Files",
        "",
        *[f"- `{f}`" for f in files],
        "",
    ]
    return "\n".join(lines)
