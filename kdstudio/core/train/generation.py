"""The generation task: a causal language model learns to write the teacher's completions.

Rows are (prompt, target completion) pairs. The target is the teacher's completion, or a person's
corrected completion where there is one (sequence-level KD, black-box: Kim and Rush 2016,
arXiv:1606.07947); excluded examples are left out. A ``--hard-labels`` run has no teacher: every
reference of a train prompt is a row (a corrected completion is one more). With ``--kd token`` and
a local ``lm:`` teacher that shares the student's vocabulary, the student also matches the
teacher's next-token distribution at every completion position (``losses.token_kd``, white-box);
the teacher runs alongside, frozen, on the same token ids, so nothing is stored (0 bytes per token).

A row's tokens are ``tokenizer(format_prompt(prompt))`` then ``tokenizer(completion)`` and the
end-of-text token, tokenized apart so the prompt is exactly what ``generate`` feeds the model at
inference; the loss reads the completion tokens only (targets ``-100`` on the prompt and the
padding). A row longer than ``--max-length`` keeps the end of its prompt and the start of its
completion. Batches group rows of similar length (``data.LengthBucketBatcher``).

Validation reports ``valid/loss`` (the run's loss terms per completion token; lower is better, so
the best checkpoint and early stopping follow it), ``valid/ce``, ``valid/perplexity`` (exp of the
cross-entropy), ``valid/token_accuracy`` and, with ``--kd token``, ``valid/token_kd`` and
``valid/kl`` (KL(teacher ‖ student) at T = 1). When a run finishes, the best checkpoint writes a
completion for every valid and test prompt (greedy, one at a time, with ``generate``), each
scored against the teacher's completion and the references (``predictions.scores``).
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from kdstudio.core.errors import ConfigError
from kdstudio.core.events import EtaClock, Event, Log, Progress
from kdstudio.core.generate import DEFAULT_TEMPLATE, format_prompt, generate
from kdstudio.core.predict import HeldOutScores
from kdstudio.core.students import build_student, load_student, parse_student_spec
from kdstudio.core.students.registry import MAX_NEW_TOKENS_CAP
from kdstudio.core.students.tokenizer import causal_lm_folder, causal_teacher_path, load_tokenizer, train_bpe
from kdstudio.core.text_metrics import corpus_scores, primary_score, score_completion
from kdstudio.core.train.config import TrainConfig
from kdstudio.core.train.data import TrainingData
from kdstudio.core.train.losses import Term, combined_loss
from kdstudio.core.train.runtime import Runtime

IGNORE = -100  #: the target of a prompt or padding position: no loss there
HELD_OUT = ("valid", "test")  #: the splits a finished run writes completions for


@dataclass
class GenerationRows:
    """One split as (prompt, target completion) rows; a prompt with several targets (references)
    gives several rows. Once encoded: ``tokens`` (prompt, completion, end-of-text) and ``starts``,
    where each row's completion begins."""

    ids: list[int]
    prompts: list[str]
    targets: list[str]
    tokens: list[list[int]] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def texts(self) -> list[str]:
        return self.prompts

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(t) for t in self.tokens), dtype=np.int64, count=len(self.tokens))

    @property
    def completion_lengths(self) -> list[int]:
        return [len(t) - s for t, s in zip(self.tokens, self.starts, strict=True)]

    def subset(self, keep: Sequence[int]) -> GenerationRows:
        pick = [int(i) for i in keep]
        return GenerationRows([self.ids[i] for i in pick], [self.prompts[i] for i in pick],
                              [self.targets[i] for i in pick])


class GenerationTask:
    """Prompts with completions: a causal LM student learns the target completions (``ce`` on
    the completion tokens), and with ``--kd token`` the teacher's distributions (``token_kd``)."""

    embeds_from_teacher = False  # every student starts from the same random weights, teacher or not
    prunes_vocab = False  # token-level KD needs the teacher's vocabulary as it is
    teacher_ids = None

    def __init__(self, config: TrainConfig, labels: Sequence[str], runtime: Runtime) -> None:
        self.cfg, self.rt = config, runtime
        self.template = DEFAULT_TEMPLATE
        self.corpus: list[str] = []  # the project's texts, for a tokenizer trained here
        self.train_rows: GenerationRows | None = None
        self.teacher: Any = None  # the frozen lm: teacher of a --kd token run
        self.teacher_spec: str | None = None
        self.causal_teacher: str | None = None
        self.pad = self.eos = 0

    # -- rows ---------------------------------------------------------------------------------
    def load(self, project: Any, *, teacher_id: int | None) -> TrainingData:
        cfg, references_only = self.cfg, self.cfg.hard_labels
        corrected = project.corrected_completions()
        references = project.references_of()
        teacher = teacher_completions(project, teacher_id)
        self.corpus = generation_corpus(project, teacher, references, corrected)

        def targets(ex: int, *, fall_back: bool = False) -> list[str]:
            if references_only:
                refs = references.get(ex, [])
                return [*refs, corrected[ex]] if ex in corrected and corrected[ex] not in refs else refs
            own = corrected.get(ex) or teacher.get(ex)
            return [own] if own else references.get(ex, []) if fall_back else []

        notes: list[str] = []
        used, missing = 0, 0
        train = GenerationRows([], [], [])
        for split in ("train", "unlabeled"):
            reviewed = project.reviewed_examples(split)
            used += len(reviewed.excluded)
            for ex, prompt, _ in reviewed.rows:
                found = targets(ex)
                used += ex in corrected and bool(found)
                missing += not found and split == "train"
                for target in found:
                    train.ids.append(ex)
                    train.prompts.append(prompt)
                    train.targets.append(target)
        if not len(train):
            if references_only:
                raise ConfigError("no references in the train split: import prompts with their reference "
                                  "completions to train on references (--hard-labels)")
            if teacher_id is None:
                raise ConfigError("no teacher completions in this project: harvest a teacher first, or train "
                                  "on the references with --hard-labels")
            raise ConfigError(f"teacher {teacher_id} has no completions on train or unlabeled prompts: "
                              "harvest them first")
        if missing:
            what = "references" if references_only else "teacher completion"
            notes.append(f"{missing} train prompts have no {what} and are not used")
        valid = GenerationRows([], [], [])
        for ex, prompt, _ in project.reviewed_examples("valid").rows:
            for target in targets(ex, fall_back=True):
                valid.ids.append(ex)
                valid.prompts.append(prompt)
                valid.targets.append(target)
        if not len(valid):
            prompts = sorted(set(train.ids))
            if len(prompts) >= 10:
                held = set(np.random.default_rng(cfg.seed).permutation(prompts)[: max(1, len(prompts) // 10)].tolist())
                valid = train.subset([i for i, ex in enumerate(train.ids) if ex in held])
                train = train.subset([i for i, ex in enumerate(train.ids) if ex not in held])
                notes.append(f"no valid split: holding out {len(held)} training prompts to validate on")
            else:
                notes.append("no valid split and too few prompts to hold some out: no early stopping")
        self.train_rows = train
        return TrainingData(train, valid, used, notes)  # type: ignore[arg-type]

    # -- teacher and tokenizer ----------------------------------------------------------------
    def teacher_path(self, teacher_spec: str | None) -> str | None:
        self.teacher_spec, self.causal_teacher = teacher_spec, causal_teacher_path(teacher_spec)
        if self.cfg.kd == "token" and not self.cfg.hard_labels and not self.causal_teacher:
            raise ConfigError(f"--kd token needs a local causal LM teacher (lm:PATH); the run's teacher is "
                              f"{teacher_spec or 'none'}: use --kd sequence, or --teacher ID of an lm: teacher")
        return self.causal_teacher

    def choose_tokenizer(self, teacher_path: str | None, data: TrainingData, notes: list[str]) -> tuple[Any, str]:
        """An ``hf:`` student's own tokenizer, else the ``lm:`` teacher's, else a byte-level BPE
        trained on the project's prompts, completions and references (all splits)."""
        kind, arg = parse_student_spec(self.cfg.student)
        if kind == "hf":
            return self._load_tokenizer(causal_lm_folder(arg)), "student"
        if teacher_path:
            try:
                return load_tokenizer(teacher_path), "teacher"
            except (OSError, ValueError):
                notes.append(f"the teacher's tokenizer ({teacher_path}) did not load; training a byte-level BPE")
        tokenizer = train_bpe(self.corpus, self.cfg.vocab_size)
        notes.append(f"trained a byte-level BPE tokenizer on {len(self.corpus)} texts: {len(tokenizer)} tokens "
                     f"(at most {self.cfg.vocab_size})")
        return tokenizer, "bpe"

    @staticmethod
    def _load_tokenizer(source: str) -> Any:
        try:
            return load_tokenizer(source)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load the tokenizer of {source!r}: {str(exc).splitlines()[0]}") from None

    def _prepare(self, tokenizer: Any) -> None:
        """The end-of-text token ends every completion and pads (when the tokenizer has no pad)."""
        if tokenizer.eos_token_id is None:
            raise ConfigError(f"the tokenizer of {self.cfg.student} has no end-of-text token; a generation "
                              "student needs one to end its completions")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.pad, self.eos = tokenizer.pad_token_id, tokenizer.eos_token_id

    def encode(self, rows: GenerationRows, tokenizer: Any) -> None:
        self._prepare(tokenizer)
        if not len(rows):
            rows.tokens, rows.starts = [], []
            return
        prompts = tokenizer([format_prompt(p, self.template) for p in rows.prompts],
                            add_special_tokens=False)["input_ids"]
        completions = tokenizer(list(rows.targets), add_special_tokens=False)["input_ids"]
        limit = self.cfg.max_length
        rows.tokens, rows.starts = [], []
        for p, c in zip(prompts, completions, strict=True):
            c = [*c, self.eos]
            keep = min(len(p), max(limit - len(c), limit // 4))  # a long prompt keeps its end
            p = p[len(p) - keep:]
            rows.tokens.append(p + c[: limit - keep])  # a long completion loses its end
            rows.starts.append(keep)

    @property
    def max_new_tokens(self) -> int:
        """``--max-new-tokens``, else 1.25 x the 99th percentile of the training completions'
        lengths in tokens (end-of-text included), at most ``MAX_NEW_TOKENS_CAP``."""
        if self.cfg.max_new_tokens:
            return self.cfg.max_new_tokens
        lengths = self.train_rows.completion_lengths if self.train_rows is not None and self.train_rows.tokens else []
        if not lengths:
            return 64
        return int(min(MAX_NEW_TOKENS_CAP, max(8, math.ceil(1.25 * float(np.percentile(lengths, 99))))))

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"template": self.template, "max_new_tokens": self.max_new_tokens,
                "kd": "references" if self.cfg.hard_labels else self.cfg.kd}

    # -- model --------------------------------------------------------------------------------
    def build_student(self, tokenizer: Any, *, teacher_path: str | None) -> Any:
        self._prepare(tokenizer)
        return build_student(self.cfg.student, 0, tokenizer, max_length=self.cfg.max_length, task="generation")

    def attach(self, tokenizer: Any, hidden: tuple[Any, Any] | None = None) -> None:
        self._prepare(tokenizer)
        if self.cfg.kd == "token" and not self.cfg.hard_labels and self.teacher is None:
            self.teacher = self._token_teacher(tokenizer)

    def _token_teacher(self, tokenizer: Any) -> Any:
        """The frozen ``lm:`` teacher for ``--kd token``, after checking it shares the student's vocabulary."""
        from transformers import AutoModelForCausalLM

        from kdstudio.core.students.pretrained import quiet_hf

        assert self.causal_teacher is not None
        theirs = self._load_tokenizer(self.causal_teacher)
        if theirs.get_vocab() != tokenizer.get_vocab():
            raise ConfigError(
                f"--kd token needs the student and the teacher to share a vocabulary, and these differ: the "
                f"student's tokenizer ({self.cfg.student}, {len(tokenizer)} tokens) and the teacher's "
                f"({self.teacher_spec}, {len(theirs)} tokens); train a gpt-* student (it takes the teacher's "
                f"tokenizer) or use --kd sequence")
        try:
            with quiet_hf():
                model = AutoModelForCausalLM.from_pretrained(self.causal_teacher, trust_remote_code=False)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load the teacher {self.teacher_spec}: {str(exc).splitlines()[0]}") from None
        return model.to(self.rt.device).eval().requires_grad_(False)

    def loss_terms(self) -> tuple[Term, ...]:
        cfg = self.cfg
        if self.teacher is None:
            return (Term("ce", 1.0),)
        return (Term("token_kd", cfg.alpha, {"temperature": cfg.temperature}), Term("ce", 1.0 - cfg.alpha))

    def batch(self, rows: GenerationRows, index: np.ndarray, device: Any) -> dict[str, Any]:
        """Right-padded token ids, the attention mask and the targets (``-100`` but on completions)."""
        seqs = [rows.tokens[i] for i in index]
        width = max(len(s) for s in seqs)
        ids = np.full((len(seqs), width), self.pad, dtype=np.int64)
        mask = np.zeros((len(seqs), width), dtype=np.int64)
        labels = np.full((len(seqs), width), IGNORE, dtype=np.int64)
        for row, (i, seq) in enumerate(zip(index, seqs, strict=True)):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
            start = rows.starts[i]
            labels[row, start : len(seq)] = seq[start:]
        return {name: torch.from_numpy(a).to(device, non_blocking=True)
                for name, a in (("input_ids", ids), ("attention_mask", mask), ("labels", labels))}

    def forward(self, model: Any, batch: dict[str, Any]) -> dict[str, Any]:
        """Next-token logits at every position but the last (``logits``), the token each should
        predict (``gold``) and, with a token-KD teacher, its logits at the same positions."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1]
        out = {**batch, "logits": logits, "gold": batch["labels"][:, 1:]}
        if self.teacher is not None:
            with torch.no_grad():
                teacher = self.teacher(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1]
            width = min(logits.shape[-1], teacher.shape[-1])  # padded embedding tables past the shared vocabulary
            out["logits"], out["teacher_logits"] = logits[..., :width], teacher[..., :width]
        return out

    @torch.no_grad()
    def validate(self, model: Any, rows: GenerationRows) -> dict[str, float]:
        """The loss terms, perplexity and token accuracy per completion token (and the KL to the
        teacher with ``--kd token``)."""
        model.eval()
        order = np.argsort(rows.lengths, kind="stable")
        terms = self.loss_terms()
        totals: dict[str, float] = {}
        tokens = correct = 0
        kl = 0.0
        step = self.cfg.batch_size * 2
        for start in range(0, len(order), step):
            batch = self.batch(rows, order[start : start + step], self.rt.device)
            with self.rt.autocast():
                out = self.forward(model, batch)
                parts = combined_loss(terms, out)
            known = out["gold"] >= 0
            n = int(known.sum())
            tokens += n
            for name, value in parts.items():
                totals[name] = totals.get(name, 0.0) + float(value) * n
            correct += int((out["logits"].argmax(-1)[known] == out["gold"][known]).sum())
            if self.teacher is not None and n:
                p = torch.softmax(out["teacher_logits"][known].float(), -1)
                log_q = torch.log_softmax(out["logits"][known].float(), -1)
                kl += float((p.xlogy(p) - p * log_q).sum())
        model.train()
        if not tokens:
            return {}
        metrics = {f"valid/{name}": value / tokens for name, value in totals.items()}
        metrics["valid/perplexity"] = math.exp(min(metrics["valid/ce"], 50.0))
        metrics["valid/token_accuracy"] = correct / tokens
        if self.teacher is not None:
            metrics["valid/kl"] = kl / tokens
        return metrics

    # -- held-out completions -----------------------------------------------------------------
    def predict(self, project: Any, run_id: int, checkpoint: Any, *, teacher_id: int | None,
                device: str) -> Generator[Event, None, HeldOutScores]:
        """Write a completion for every valid and test prompt with the best checkpoint, score each
        against the teacher's completion (a corrected one wins) and the references, store them as
        the run's predictions and return the test split's scores."""
        rows = sorted(r for split in HELD_OUT for r in project.examples(split))
        test_ids = {r[0] for r in project.examples("test")}
        if not rows:
            return HeldOutScores(0, None, None)
        model, tokenizer, meta = load_student(checkpoint, device=device)
        ids = [r[0] for r in rows]
        teacher: dict[int, str] = {}
        if teacher_id is not None:
            teacher = {o["id"]: o["completion"] for o in project.teacher_outputs(teacher_id, list(HELD_OUT))
                       if o["completion"]}
        held_out = set(ids)
        teacher.update({ex: text for ex, text in project.corrected_completions().items() if ex in held_out})
        references = project.references_of(ids)
        yield Log(f"writing completions for {len(rows)} held-out prompts (valid and test) with the best checkpoint")
        clock, records, test = EtaClock(len(rows)), [], []
        completions = generate(model, tokenizer, [r[1] for r in rows], template=meta.get("template", self.template),
                               max_new_tokens=int(meta.get("max_new_tokens", self.max_new_tokens)),
                               max_prompt_tokens=meta.get("max_length"))
        for k, (ex, batch) in enumerate(zip(ids, completions, strict=True)):
            completion = batch[0]
            scores = score_completion(completion.text, teacher=teacher.get(ex), references=references.get(ex, []))
            records.append({"example": ex, "completion": completion.text, "confidence": completion.mean_logprob,
                            "latency_ms": completion.latency_ms, "scores": scores, "score": primary_score(scores)})
            if ex in test_ids:
                test.append((ex, completion))
            yield Progress("predict", k + 1, len(rows), clock.eta(k + 1))
        project.save_predictions(run_id, records)
        return held_out_scores(test, teacher, references)


def generation_corpus(project: Any, teacher: dict[int, str], references: dict[int, list[str]],
                      corrected: dict[int, str]) -> list[str]:
    """The texts a generation run's tokenizer is trained on: every prompt, the teacher's
    completions, every reference and the corrected completions (all splits)."""
    return ([text for _, text, _ in project.examples()] + list(teacher.values())
            + [r for refs in references.values() for r in refs] + list(corrected.values()))


def teacher_completions(project: Any, teacher_id: int | None) -> dict[int, str]:
    """Example id → the teacher's non-empty completion (all splits)."""
    if teacher_id is None:
        return {}
    return {o["id"]: o["completion"] for o in project.teacher_outputs(teacher_id)
            if o["completion"] and o["completion"].strip()}


def held_out_scores(test: list[tuple[int, Any]], teacher: dict[int, str],
                    references: dict[int, list[str]]) -> HeldOutScores:
    """The test split's corpus scores, mean latency and tokens/s from ``(example, Completion)`` pairs."""
    if not test:
        return HeldOutScores(0, None, None)
    texts = [c.text for _, c in test]
    vs_teacher = corpus_scores(texts, [[teacher[ex]] if ex in teacher else [] for ex, _ in test])
    vs_refs = corpus_scores(texts, [references.get(ex, []) for ex, _ in test])
    seconds = sum(c.latency_ms for _, c in test) / 1000.0
    return HeldOutScores(
        len(test), None, None,
        test_rouge_l_teacher=vs_teacher.get("rouge_l"), test_chrf_teacher=vs_teacher.get("chrf"),
        test_rouge_l_references=vs_refs.get("rouge_l"), test_chrf_references=vs_refs.get("chrf"),
        test_bleu_references=vs_refs.get("bleu"),
        test_latency_ms=round(seconds * 1000.0 / len(test), 3),
        test_tokens_per_s=round(sum(c.n_tokens for _, c in test) / seconds, 2) if seconds > 0 else None,
    )


__all__ = ["GenerationRows", "GenerationTask", "generation_corpus", "held_out_scores", "teacher_completions"]
