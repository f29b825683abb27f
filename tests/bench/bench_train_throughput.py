"""Training throughput: KD Studio's loop against a Hugging Face ``Trainer`` subclass computing
the same KD loss (the usual recipe: tokenize with truncation, ``DataCollatorWithPadding``-style
dynamic padding, random batches), in the same process, with the same student
(``transformer-mini``), data, soft labels, batch size, maximum length and thread count.

    python tests/bench/bench_train_throughput.py --rows 3000 --batch-size 32 --max-length 128

Examples/s counts training steps only (from the end of the first step to the end of the last),
so start-up and evaluation are left out of both. Prints a JSON line.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import sys
import tempfile
import time
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DATASETS = Path(os.environ.get("KDSTUDIO_DATASETS", ROOT.parent / "shared" / "datasets"))


def load_rows(n: int, seed: int) -> tuple[list[str], list[tuple[str, int]]]:
    with open(DATASETS / "banking77" / "train.csv", newline="", encoding="utf-8") as f:
        rows = [(r["text"], r["category"]) for r in csv.DictReader(f)]
    labels = sorted({lab for _, lab in rows})
    random.Random(seed).shuffle(rows)
    return labels, [(t, labels.index(lab)) for t, lab in rows[:n]]


def soft_label(gold: int, n_labels: int, rng: random.Random) -> list[float]:
    probs = [rng.random() * 0.02 for _ in range(n_labels)]
    probs[gold] += 0.7
    total = sum(probs)
    return [p / total for p in probs]


def build_project(path: Path, labels: list[str], rows: list[tuple[str, int]], seed: int) -> int:
    from kdstudio.core.store import Project, TeacherOutput

    rng = random.Random(seed)
    project = Project.create(path, "classification", labels=labels)
    with project.transaction():
        project.insert_examples(
            [
                (t, g, None, "train", "bench", i, hashlib.sha256(t.encode()).hexdigest())
                for i, (t, g) in enumerate(rows)
            ]
        )
        project.insert_examples(
            [
                (t, g, None, "valid", "bench", i, hashlib.sha256(t.encode()).hexdigest())
                for i, (t, g) in enumerate(rows[:64])
            ]
        )
    teacher = project.upsert_teacher("fake:soft", "fake", "soft", "bench-soft-labels", {})
    project.save_outputs(
        teacher,
        [
            TeacherOutput(example=i, probs=soft_label(g, len(labels), rng))
            for i, _, g in project.examples()
        ],
    )
    project.close()
    return teacher


def kdstudio_throughput(path: Path, args) -> dict:
    from kdstudio.core.events import Finished, Progress
    from kdstudio.core.train import TrainConfig, train

    config = TrainConfig(
        student="transformer-mini",
        epochs=1,
        batch_size=args.batch_size,
        max_length=args.max_length,
        lr=1e-3,
        num_threads=args.threads,
        seed=args.seed,
        device=args.device,
    )
    first = last = None
    result = None
    for event in train(path, config):
        if isinstance(event, Progress):
            last = (time.perf_counter(), event.done)
            first = first or last
        elif isinstance(event, Finished):
            result = event.result
    steps = last[1] - first[1]
    return {
        "examples_per_s": round(steps * args.batch_size / (last[0] - first[0]), 1),
        "steps": result.steps,
        "peak_memory_mb": result.peak_memory_mb,
        "device": result.device,
    }


def hf_trainer_throughput(path: Path, args, work: Path) -> dict:
    import torch
    import torch.nn.functional as F
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from kdstudio.core.store import Project
    from kdstudio.core.students import build_student
    from kdstudio.core.students.tokenizer import train_wordpiece

    with Project(path) as project:
        labels = project.labels()
        outputs = project.teacher_outputs(project.default_teacher(), ["train"])
        texts = [r[1] for r in project.examples("train")] + [
            r[1] for r in project.examples("valid")
        ]
    tokenizer = train_wordpiece(
        texts, 8000
    )  # the same vocabulary KD Studio builds for this project
    torch.manual_seed(args.seed)
    model = build_student("transformer-mini", len(labels), tokenizer, labels=labels).model
    encoded = tokenizer([o["text"] for o in outputs], truncation=True, max_length=args.max_length)
    dataset = [
        {"input_ids": ids, "teacher_probs": o["probs"], "labels": o["gold"]}
        for ids, o in zip(encoded["input_ids"], outputs, strict=True)
    ]

    def collate(features):
        batch = tokenizer.pad(
            [{"input_ids": f["input_ids"]} for f in features], return_tensors="pt"
        )
        batch["teacher_probs"] = torch.tensor([f["teacher_probs"] for f in features])
        batch["labels"] = torch.tensor([f["labels"] for f in features])
        return batch

    class KDTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            teacher, labels = inputs.pop("teacher_probs"), inputs.pop("labels")
            outputs = model(**inputs)
            t = args.temperature
            target = torch.softmax(torch.log(teacher) / t, -1)
            kd = (
                F.kl_div(F.log_softmax(outputs.logits / t, -1), target, reduction="batchmean")
                * t
                * t
            )
            loss = args.alpha * kd + (1 - args.alpha) * F.cross_entropy(outputs.logits, labels)
            return (loss, outputs) if return_outputs else loss

    class Clock(TrainerCallback):
        marks: typing.ClassVar[list] = []

        def on_step_end(self, a, state, control, **kw):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.marks.append((time.perf_counter(), state.global_step))

    training_args = TrainingArguments(
        output_dir=str(work / "hf"),
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=1,
        learning_rate=1e-3,
        warmup_steps=0.06,  # a float below 1 is a fraction of the steps
        weight_decay=0.01,
        max_grad_norm=1.0,
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        seed=args.seed,
        disable_tqdm=True,
        use_cpu=args.device == "cpu",
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
    )
    clock = Clock()
    KDTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        data_collator=collate,
        callbacks=[clock],
    ).train()
    (t0, s0), (t1, s1) = clock.marks[0], clock.marks[-1]
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return {
        "examples_per_s": round((s1 - s0) * args.batch_size / (t1 - t0), 1),
        "steps": s1,
        "peak_memory_mb": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--temperature", type=float, default=3.0)
    parser.add_argument("--alpha", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="kd-throughput-"))
    labels, rows = load_rows(args.rows, args.seed)
    path = work / "bench.kdproj"
    build_project(path, labels, rows, args.seed)
    ours = kdstudio_throughput(path, args)
    torch.set_num_threads(args.threads)
    theirs = hf_trainer_throughput(path, args, work)
    print(
        json.dumps(
            {
                "rows": args.rows,
                "batch_size": args.batch_size,
                "max_length": args.max_length,
                "threads": args.threads,
                "kdstudio": ours,
                "hf_trainer": theirs,
                "speedup": round(ours["examples_per_s"] / theirs["examples_per_s"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
