"""Benchmark: the Claude teacher's answer sized to the label set, against the loopback fake API.

Everything goes through the real harvest job (``kdstudio.core.harvest.harvest``) against
``tests/fakes/anthropic_server.FakeAnthropic`` in this process, which counts output tokens as a
tokenizer does, enforces ``max_tokens`` and caches only prefixes the model's minimum long. Its
teacher is simulated (:class:`SimulatedTeacher`): for each text a belief centred on the text's
gold label, 4 confusable labels (ones sharing a word with the gold label's name) next, the other
labels sharing a word a little above a low noisy tail, and the top label wrong for about
``WRONG`` of the texts. The fake writes that belief in whatever shape the request's schema asks
for, probabilities rounded to two decimals.

Part 1, cost and size: ``--n`` texts of each of sst2 (2 labels), TREC (6 coarse labels),
banking77 (77) and a 150-intent set (banking77's texts) are harvested with three answers:

- *old*: every label's probability with ``max_tokens`` 512 (the previous default: on 77 and 150
  labels it is cut off, fails, and is still billed);
- *full, uncut*: the same answer with ``max_tokens`` ``UNCUT``: what it costs when it fits;
- *new*: the defaults (every label up to 10 labels, else the 5 most likely; ``max_tokens`` from
  the schema);

at claude-haiku-5-5 and claude-sonnet-5-5 prices (the harvest's recorded cost, scaled to 1,000
requests). Goals: no failed answers with the new answer on any set, at most 80 output tokens an
answer on every set, and 1,000 banking77 answers at least 5x cheaper than the uncut full answer.

Part 2, quality: a banking77 few-gold project built as ``kdstudio demo`` builds it (its gold rows
per intent, its student, epochs and seed) is harvested by two Claude teachers with the same
simulated belief: the full distribution (``top_k`` 0, ``max_tokens`` ``UNCUT``) and the default
top-5 answer (each calibrated by the harvest on the gold rows). The demo's KD student is trained
on each and evaluated on test. Goal: the two students' accuracies within 0.5 points
(``--seeds K`` averages K seeds, to see the run-to-run spread).

Run: ``python tests/bench/bench_claude_answers.py [--part 1|2|all] [--n 200] [--rows N]
[--seeds 1] [--output-mode json|tool] [--data DIR] [--work DIR]``. ``--rows`` keeps a seeded
subset of banking77's train rows for part 2 and a third as many test rows, as ``kdstudio demo
--rows`` does; ``--data`` (or ``$KDSTUDIO_DATASETS``) is a folder with ``sst2/stsa.binary.train``
and ``trec/TREC.train`` from those data sets' public releases (without it part 1 measures
banking77 and the 150-intent set only); a ``--work`` folder keeps part 2's project, and a rerun
there asks the teachers nothing again. The full run takes about 8 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
SAMPLE = ROOT / "resources" / "sample"
DATASETS = os.environ.get("KDSTUDIO_DATASETS")

MODELS = {"claude-haiku-5-5": "Haiku 5.5", "claude-sonnet-5-5": "Sonnet 5.5"}
OLD_MAX_TOKENS = 512  #: the previous default for every label set
UNCUT = 4096  #: room for every label's probability on 150 labels (about 1,300 tokens)
SHAPES = [
    ("old: full, max_tokens 512", {"top_k": 0, "max_tokens": OLD_MAX_TOKENS}),
    ("full, uncut", {"top_k": 0, "max_tokens": UNCUT}),
    ("new (default)", {}),
]
NO_RATE_LIMIT = (10**12, 10**12)  #: rate limits are not what is measured here
WRONG = 0.12  #: share of texts whose most likely label is a confusable one, not the gold one
CONFUSABLE = 4
STOP_WORDS = {"a", "an", "the", "or", "and", "to", "of", "is", "in", "on", "for", "my", "by", "how"}
INSTRUCTIONS = {
    "sst2": "Classify the sentiment of a sentence from a movie review.",
    "trec": "Classify what kind of answer a question asks for: ABBR an abbreviation, DESC a description, "
            "ENTY an entity, HUM a person, LOC a location, NUM a number.",
    "banking77": "Classify the intent of an online-banking customer message.",  # the demo's instructions
    "intents150": "Classify the intent of a message to a virtual assistant (banking, travel, home, work, "
                  "small talk).",
}


def _key(text: str) -> str:
    return " ".join(text.split())


class SimulatedTeacher:
    """A deterministic teacher belief per text (the fake's ``distribution=`` hook): a softmax over
    logits seeded by the text's hash: the gold label U(4, 7); ``CONFUSABLE`` labels that share a
    word with it (others when too few do) 2.5 ± 0.7; the other labels that share a word with it
    0.5 ± 0.6 (the tail's signal); the rest -1 ± 0.8 (its noise). For ``WRONG`` of the texts one
    confusable label is raised above the gold one."""

    def __init__(self, gold: dict[str, str]) -> None:
        self.gold = {_key(t): g for t, g in gold.items()}
        self._near: dict[tuple[str, int], list[str]] = {}

    @staticmethod
    def _words(label: str) -> set[str]:
        return set(label.lower().split("_")) - STOP_WORDS

    def _sharing(self, gold: str, labels: list[str]) -> list[str]:
        cache = (gold, len(labels))
        if cache not in self._near:
            words = self._words(gold)
            self._near[cache] = [lab for lab in labels if lab != gold and words & self._words(lab)]
        return self._near[cache]

    def __call__(self, text: str, labels: list[str], seen: int = 1) -> dict[str, float]:
        digest = hashlib.sha256(_key(text).encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        gold = self.gold.get(_key(text))
        if gold not in labels:
            gold = labels[int.from_bytes(digest[8:12], "big") % len(labels)]
        sharing = list(self._sharing(gold, labels))
        rng.shuffle(sharing)
        near = sharing[:CONFUSABLE]
        others = [lab for lab in labels if lab != gold and lab not in near]
        near += rng.sample(others, min(len(others), CONFUSABLE - len(near)))
        logits = {lab: rng.gauss(-1.0, 0.8) for lab in labels}
        for lab in sharing[CONFUSABLE:]:
            logits[lab] = 0.5 + rng.gauss(0.0, 0.6)
        for lab in near:
            logits[lab] = 2.5 + rng.gauss(0.0, 0.7)
        logits[gold] = rng.uniform(4.0, 7.0)
        if near and rng.random() < WRONG:
            logits[rng.choice(near)] = logits[gold] + rng.uniform(0.2, 1.5)
        top = max(logits.values())
        weights = {lab: math.exp(v - top) for lab, v in logits.items()}
        total = sum(weights.values())
        return {lab: w / total for lab, w in weights.items()}


# -- data ------------------------------------------------------------------------------------------
def _spread(rows: list[Any], n: int) -> list[Any]:
    step = max(1, len(rows) // n)
    return rows[::step][:n]


def _banking77_rows(file: str = "train.csv") -> list[tuple[str, str]]:
    with (SAMPLE / file).open(newline="", encoding="utf-8") as f:
        return [(r["text"], r["category"]) for r in csv.DictReader(f)]


def label_sets(data: Path | None, n: int) -> dict[str, tuple[list[str], list[tuple[str, str]]]]:
    """Set name → (labels, ``n`` (text, gold label) rows spread over its train file)."""
    from fakes.label_sets import banking77, intents150

    bank = _spread(_banking77_rows(), n)
    sets = {"banking77": (banking77(), bank), "intents150": (intents150(), bank)}
    if data is None or not (data / "sst2" / "stsa.binary.train").is_file():
        print("sst2 and TREC skipped: pass --data DIR (a folder with sst2/ and trec/)", flush=True)
        return sets
    sst2 = []
    for line in (data / "sst2" / "stsa.binary.train").read_text(encoding="utf-8").splitlines():
        label, _, text = line.partition(" ")
        sst2.append((text, "positive" if label == "1" else "negative"))
    trec = []
    for line in (data / "trec" / "TREC.train").read_text(encoding="latin-1").splitlines():
        tag, _, text = line.partition(" ")
        trec.append((text, tag.partition(":")[0]))
    return {
        "sst2": (["negative", "positive"], _spread(sst2, n)),
        "trec": (["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"], _spread(trec, n)),
        **sets,
    }


# -- part 1 ------------------------------------------------------------------------------------------
def harvest_once(work: Path, name: str, labels: list[str], rows: list[tuple[str, str]], model: str,
                 shape: dict[str, Any], output_mode: str | None = None) -> tuple[Any, int]:
    """Harvest ``rows`` in a new project against a new fake server; (HarvestResult, max_tokens sent)."""
    from fakes.anthropic_server import FakeAnthropic, project_with_texts

    from kdstudio.core.events import run_to_end
    from kdstudio.core.harvest import HarvestConfig, harvest

    teacher = SimulatedTeacher(dict(rows))
    with FakeAnthropic(distribution=teacher, token_limits=NO_RATE_LIMIT) as server:
        path = work / f"{name}-{model}-{uuid.uuid4().hex[:8]}.kdproj"
        project = project_with_texts(path, [t for t, _ in rows], labels=tuple(labels))
        project.update_settings(instructions=INSTRUCTIONS[name])
        project.close()
        options = {"api_key": "test-key", "base_url": server.url}
        if output_mode:
            options["output_mode"] = output_mode
        config = HarvestConfig(teacher=f"claude:{model}", options=options, **shape)
        result = run_to_end(harvest(path, config))
        max_tokens = server.message_requests()[0].body["max_tokens"]
    return result, max_tokens


def part1(args: argparse.Namespace, work: Path) -> tuple[list[str], list[bool]]:
    sets = label_sets(Path(args.data) if args.data else None, args.n)
    lines = [
        "| label set | labels | answer | max_tokens | output tokens / answer | failed | "
        + " | ".join(f"{m} $ / 1,000 requests" for m in MODELS.values()) + " |",
        "|---|---:|---|---:|---:|---:|" + "---:|" * len(MODELS),
    ]
    figures: dict[tuple[str, str], dict[str, Any]] = {}
    print(lines[0], flush=True)
    print(lines[1], flush=True)
    for name, (labels, rows) in sets.items():
        for shape_name, shape in SHAPES:
            fig: dict[str, Any] = {"cost": {}}
            for model in MODELS:
                result, max_tokens = harvest_once(work, name, labels, rows, model, shape, args.output_mode)
                asked = result.n_ok + result.n_failed
                fig.update(max_tokens=max_tokens, asked=asked, failed=result.n_failed,
                           tokens=result.output_tokens / max(1, asked))
                fig["cost"][model] = result.cost_usd / max(1, asked) * 1000
            figures[(name, shape_name)] = fig
            line = (f"| {name} | {len(labels)} | {shape_name} | {fig['max_tokens']} | {fig['tokens']:.0f} | "
                    f"{fig['failed']} of {fig['asked']} | "
                    + " | ".join(f"{fig['cost'][m]:.3f}" for m in MODELS) + " |")
            lines.append(line)
            print(line, flush=True)

    new = {name: figures[(name, "new (default)")] for name in sets}
    checks = [
        (all(f["failed"] == 0 for f in new.values()),
         "no failed answers with the new answer: "
         + ", ".join(f"{name} {f['failed']}/{f['asked']}" for name, f in new.items())),
        (all(f["tokens"] <= 80 for f in new.values()),
         "output tokens per answer <= 80 with the new answer: "
         + ", ".join(f"{name} {f['tokens']:.0f}" for name, f in new.items())),
    ]
    uncut = figures[("banking77", "full, uncut")]
    for model, label in MODELS.items():
        ratio = uncut["cost"][model] / new["banking77"]["cost"][model]
        checks.append((ratio >= 5, f"banking77 at {label}: 1,000 answers ${new['banking77']['cost'][model]:.3f} "
                                   f"vs ${uncut['cost'][model]:.3f} for the uncut full answer = {ratio:.2f}x "
                                   "cheaper (goal >= 5x)"))
    goals = [f"goal: {why} {'PASS' if ok else 'FAIL'}" for ok, why in checks]
    print("\n".join(goals), flush=True)
    return [*lines, "", *goals], [ok for ok, _ in checks]


# -- part 2 ------------------------------------------------------------------------------------------
def build_few_gold(work: Path, rows: int | None, gold_per_class: int, seed: int) -> tuple[Path, dict[str, str]]:
    """The demo's banking77 project (few gold rows per intent, the rest unlabelled, test) and every
    text's gold label (for the simulated teacher)."""
    from kdstudio.core.data import import_file
    from kdstudio.core.demo import TEST_SHARE, write_few_gold_train, write_subset
    from kdstudio.core.events import run_to_end
    from kdstudio.core.store import Project

    sample = SAMPLE
    if rows is not None:
        sample = work / "subset"
        sample.mkdir(exist_ok=True)
        write_subset(SAMPLE / "train.csv", sample / "train.csv", rows, seed)
        write_subset(SAMPLE / "test.csv", sample / "test.csv", max(1, rows // TEST_SHARE), seed)
    path = work / "banking77-few-gold.kdproj"
    if not path.exists():  # a --work folder from an earlier run keeps its project and answers
        Project.create(path, "classification", name="Banking77 few gold",
                       settings={"instructions": INSTRUCTIONS["banking77"]}).close()
        few = work / "few-gold-train.csv"
        write_few_gold_train(sample / "train.csv", few, gold_per_class, seed)
        run_to_end(import_file(path, few, seed=seed))
        run_to_end(import_file(path, sample / "test.csv", split="test"))
    gold: dict[str, str] = {}
    for file in ("train.csv", "test.csv"):
        with (sample / file).open(newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                gold.setdefault(r["text"], r["category"])
    return path, gold


def _calibration(result: Any) -> str:
    """The harvest's calibration of the teacher, in a few words."""
    fit = getattr(result, "calibration", None)
    if not fit:
        return "none"
    return f"{fit['temperature']:.2f}, {fit['smoothing']:g}" + ("" if fit.get("applied", True) else " (not applied)")


def part2(args: argparse.Namespace, work: Path) -> tuple[list[str], list[bool]]:
    from fakes.anthropic_server import FakeAnthropic

    from kdstudio.core.demo import DEFAULTS
    from kdstudio.core.evaluate import evaluate
    from kdstudio.core.events import run_to_end
    from kdstudio.core.harvest import HarvestConfig, harvest
    from kdstudio.core.store import Project
    from kdstudio.core.train import TrainConfig, train

    t0 = time.monotonic()
    path, gold = build_few_gold(work, args.rows, DEFAULTS["gold_per_class"], DEFAULTS["seed"])
    teacher = SimulatedTeacher(gold)
    with Project(path) as project:
        labels = project.labels()
    texts = list(gold)
    beliefs = [teacher(t, labels) for t in texts]
    belief_acc = sum(max(b, key=b.get) == gold.get(t) for t, b in zip(texts, beliefs, strict=True)) / len(texts)
    tail = sum(1 - sum(sorted(b.values(), reverse=True)[:5]) for b in beliefs) / len(beliefs)
    print(f"part 2: {len(texts)} texts, {len(labels)} labels; the simulated teacher's top label is the gold one "
          f"for {belief_acc:.1%} of them and leaves {tail:.1%} of its mass (mean) outside its top 5", flush=True)

    shapes = [("full distribution", {"top_k": 0, "max_tokens": UNCUT}), ("top-5 (default)", {})]
    outcome: dict[str, dict[str, Any]] = {}
    with FakeAnthropic(distribution=teacher, token_limits=NO_RATE_LIMIT, record_bodies=False) as server:
        for name, shape in shapes:
            t1 = time.monotonic()
            config = HarvestConfig(teacher="claude:claude-haiku-5-5", concurrency=args.concurrency,
                                   options={"api_key": "test-key", "base_url": server.url}, **shape)
            result = run_to_end(harvest(path, config))
            with Project(path) as project:  # every stored answer: a rerun in --work asks for none
                counts = project.count_outputs(result.teacher)
            asked = counts["n"]
            outcome[name] = {"teacher": result.teacher, "failed": counts["n_failed"], "asked": asked,
                             "tokens": counts["output_tokens"] / max(1, asked), "cost": counts["cost_usd"],
                             "harvest_s": time.monotonic() - t1, "calibration": _calibration(result)}
            print(f"  harvested {name}: {asked} answers, {counts['n_failed']} failed, "
                  f"{outcome[name]['harvest_s']:.0f} s", flush=True)
    with Project(path) as project:
        probs = {name: {r["id"]: r["probs"] for r in project.teacher_outputs(o["teacher"])}
                 for name, o in outcome.items()}
    full, top = probs["full distribution"], probs["top-5 (default)"]
    shared = full.keys() & top.keys()
    tv = sum(0.5 * sum(abs(a - b) for a, b in zip(full[i], top[i], strict=True)) for i in shared) / max(1, len(shared))

    seeds = [DEFAULTS["seed"] + i for i in range(args.seeds)]
    extra = {"temperature": args.temperature} if args.temperature else {}
    for name, o in outcome.items():
        o["students"] = []
        for seed in seeds:
            t1 = time.monotonic()
            config = TrainConfig(student=DEFAULTS["student"], teacher=o["teacher"], hard_labels=False,
                                 epochs=DEFAULTS["epochs"], seed=seed, name=f"{DEFAULTS['student']} KD {name}", **extra)
            trained = run_to_end(train(path, config))
            report = run_to_end(evaluate(path, trained.run, speed=False))
            o["students"].append(report.student_accuracy)
            o.update(teacher_acc=report.teacher_accuracy, agreement=report.agreement)
            print(f"  trained and evaluated the student on {name} (seed {seed}): {report.student_accuracy:.4f} "
                  f"({time.monotonic() - t1:.0f} s)", flush=True)
        o["student"] = sum(o["students"]) / len(o["students"])

    student = f"KD student ({DEFAULTS['student']}) accuracy (test)" + (f", mean of seeds {seeds}" if len(seeds) > 1
                                                                       else "")
    lines = [
        f"| teacher answer | output tokens / answer | failed | calibration (T, ε) | teacher accuracy (test) | "
        f"{student} | student–teacher agreement |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for name, o in outcome.items():
        each = f" ({', '.join(f'{a:.4f}' for a in o['students'])})" if len(seeds) > 1 else ""
        lines.append(f"| {name} | {o['tokens']:.0f} | {o['failed']} of {o['asked']} | {o['calibration']} | "
                     f"{o['teacher_acc']:.4f} | {o['student']:.4f}{each} | {o['agreement']:.4f} |")
    diff = 100 * (outcome["top-5 (default)"]["student"] - outcome["full distribution"]["student"])
    ok = abs(diff) <= 0.5
    lines += ["", f"mean total-variation distance between the two teachers' stored distributions: {tv:.4f}",
              f"part 2 took {time.monotonic() - t0:.0f} s",
              f"goal: student accuracy on the top-5 teacher minus on the full-distribution teacher = {diff:+.2f} "
              f"points (goal within 0.5; {'the top-5 student is better' if diff > 0 else 'the full one is better'}) "
              f"{'PASS' if ok else 'FAIL'}"]
    print(json.dumps(outcome), flush=True)
    return lines, [ok]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["1", "2", "all"], default="all")
    parser.add_argument("--n", type=int, default=200, help="part 1: texts per label set")
    parser.add_argument("--rows", type=int, default=None, help="part 2: keep N banking77 train rows (default: all)")
    parser.add_argument("--output-mode", choices=["json", "tool"], default=None,
                        help="part 1: how the answer is structured (default: the teacher's, JSON outputs)")
    parser.add_argument("--data", default=DATASETS, help="folder with sst2/ and trec/ (default: $KDSTUDIO_DATASETS)")
    parser.add_argument("--concurrency", type=int, default=8, help="part 2: requests in flight")
    parser.add_argument("--seeds", type=int, default=1,
                        help="part 2: train each teacher's student with this many seeds (the demo's and the next)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="part 2: the students' KD temperature (default: the demo's, TrainConfig's default)")
    parser.add_argument("--work", default=None, help="folder for the projects (default: a temp folder)")
    args = parser.parse_args()

    import anthropic  # noqa: F401 - load the SDK before the clock starts

    t0 = time.monotonic()
    out: list[str] = []
    passed: list[bool] = []
    with tempfile.TemporaryDirectory(prefix="kd-claude-answers-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.part in ("1", "all"):
            (work / "part1").mkdir(exist_ok=True)
            lines, ok = part1(args, work / "part1")
            out += ["", "## Part 1: answer size and cost", "", *lines]
            passed += ok
        if args.part in ("2", "all"):
            (work / "part2").mkdir(exist_ok=True)
            lines, ok = part2(args, work / "part2")
            out += ["", "## Part 2: student quality, full distribution vs top-5", "", *lines]
            passed += ok
    print("\n".join(out))
    print(f"\nbench_claude_answers: {sum(passed)} of {len(passed)} goals met in {time.monotonic() - t0:.0f} s "
          f"{'PASS' if all(passed) else 'FAIL'}")
    return 0 if all(passed) else 1


if __name__ == "__main__":
    raise SystemExit(main())
