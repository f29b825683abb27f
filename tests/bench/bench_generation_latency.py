"""Benchmark: latency per completion and tokens/s of a ``gpt-tiny`` student against a local ``lm:``
teacher of GPT-2 small's shape, measured by ``kdstudio eval`` in one interleaved run.

Both models are GPT-2s with random weights built from configs (the speed of a forward pass does
not depend on what the weights learned), over one byte-level BPE trained on the E2E texts (or on
a few synthetic ones when the data set is absent): the student has the ``gpt-tiny`` preset's shape
(``GPT_SIZES["tiny"]``: 2 layers × 128 wide, 2 heads); the teacher GPT-2 small's (12 layers × 768
wide, 12 heads), the size of a local model a user would distil from. Random weights rarely
write the end-of-text token, so both usually write ``--max-new-tokens`` tokens per completion.
The evaluation times each at batch 1 on the same test prompts, student and teacher in turn, with
KD Studio's one generation routine, on the CPU with all cores but one.

Run: ``python tests/bench/bench_generation_latency.py [--prompts 16] [--max-new-tokens 64]``
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
E2E = Path(os.environ.get("KDSTUDIO_DATASETS", ROOT.parent / "shared" / "datasets")) / "e2e_nlg" / "testset_w_refs.csv"
def shapes() -> dict[str, tuple[int, int, int]]:
    from kdstudio.core.students.registry import GPT_SIZES

    return {"student (gpt-tiny)": GPT_SIZES["tiny"], "teacher (GPT-2 small's shape)": (12, 768, 12)}


def pairs() -> list[tuple[str, str]]:
    if E2E.is_file():
        with E2E.open(newline="", encoding="utf-8") as f:
            return [(r["mr"], r["ref"]) for r in csv.DictReader(f)]
    from fakes.tiny_models import GEN_TEXTS

    return [tuple(t.split("\n", 1)) for t in GEN_TEXTS]


def save_lm(folder: Path, tok, shape: tuple[int, int, int]) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    layers, width, heads = shape
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=width, n_layer=layers,
                                       n_head=heads, bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                                       pad_token_id=tok.eos_token_id))
    model.save_pretrained(folder)
    tok.save_pretrained(str(folder))
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()

    from fakes.tiny_models import tiny_bpe_tokenizer
    from transformers import AutoModelForCausalLM

    from kdstudio.core.evaluate.generation import evaluate_generation
    from kdstudio.core.events import run_to_end
    from kdstudio.core.store import Project, TeacherOutput
    from kdstudio.core.students import save_student
    from kdstudio.core.train import run_folder

    data = pairs()
    tok = tiny_bpe_tokenizer([f"{mr}\n{ref}" for mr, ref in data], vocab_size=8000)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        student_src = save_lm(tmp / "student", tok, shapes()["student (gpt-tiny)"])
        teacher_src = save_lm(tmp / "teacher", tok, shapes()["teacher (GPT-2 small's shape)"])
        path = tmp / "bench.kdproj"
        test = list(dict.fromkeys(mr for mr, _ in data))[: args.prompts]
        with Project.create(path, "generation") as project:
            with project.transaction():
                project.insert_examples([(mr, None, None, "test", "bench", i, hashlib.sha256(mr.encode()).hexdigest())
                                         for i, mr in enumerate(test)])
            teacher = project.upsert_teacher(f"lm:{teacher_src}", "lm", str(teacher_src), "bench",
                                             {"prompt": "{text}\n", "max_new_tokens": args.max_new_tokens})
            ids = [ex for ex, _, _ in project.examples("test")]
            project.save_outputs(teacher, [TeacherOutput(example=ex, completion="x") for ex in ids])
            run = project.create_run("gpt-tiny", teacher, {})
            model = AutoModelForCausalLM.from_pretrained(student_src)
            best = save_student(model, tok, run_folder(path, run) / "best",
                                {"spec": "gpt-tiny", "template": "{prompt}\n", "max_new_tokens": args.max_new_tokens})
            project.save_predictions(run, [{"example": ex, "completion": "x", "confidence": -1.0} for ex in ids])
            project.update_run(run, status="finished", best_checkpoint=str(best))
        r = run_to_end(evaluate_generation(path, run, speed_prompts=args.prompts))
    print(f"{len(test)} E2E test prompts, at most {args.max_new_tokens} new tokens, batch 1, {r.device} "
          f"({r.threads} thread{'s' if r.threads != 1 else ''}), student and teacher interleaved; random weights")
    print(f"{'':32}{'params':>12}{'p50 ms':>10}{'p95 ms':>10}{'tokens/s':>10}")
    for who, name in zip(("student", "teacher"), shapes(), strict=True):
        print(f"{name:32}{getattr(r, f'{who}_params'):>12,}{getattr(r, f'{who}_latency_ms_p50'):>10.1f}"
              f"{getattr(r, f'{who}_latency_ms_p95'):>10.1f}{getattr(r, f'{who}_tokens_per_s'):>10.0f}")
    print(f"speed-up (teacher p50 / student p50): {r.speedup:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
