"""Augmenting the transfer set: more inputs for the teacher to label, so a small student sees
more of the teacher's function than the user's own texts show it.

A distilled student learns from whatever the teacher labels, so new inputs need no gold label.
Each variant of an example is made by masking some words, replacing some with other words of
the corpus, and sometimes keeping only a short n-gram of the result — after Tang et al. (2019),
whose BiLSTM distilled from BERT with such a transfer set. Their replacement draws a word of
the same part of speech; here it draws any word seen at least twice in the project, since the
teacher labels the variant afresh anyway.

Variants go to the ``unlabeled`` split with ``source = 'augment'`` and ``line`` = the example
they come from. Every source example draws from its own seeded generator, so an interrupted run
and a rerun give the same rows as one uninterrupted run, and a rerun skips examples that already
have variants. Harvest the teacher afterwards; training uses them like any unlabeled text.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from kdstudio.core.data.importer import text_hash
from kdstudio.core.errors import ConfigError, DataError
from kdstudio.core.events import CancelToken, EtaClock, Event, Finished, JobResult, Progress
from kdstudio.core.store import Project

SOURCE = "augment"
CHUNK = 500


@dataclass(frozen=True)
class AugmentConfig:
    """How many variants per example and how each is made (defaults after Tang et al. 2019)."""

    per_example: int = 4
    p_mask: float = 0.1
    p_replace: float = 0.1
    p_ngram: float = 0.25
    max_ngram: int = 5
    mask_token: str = "[MASK]"
    seed: int = 0
    splits: tuple[str, ...] = ("train", "unlabeled")

    def check(self) -> None:
        if not 1 <= self.per_example <= 100:
            raise ConfigError(f"--per-example must be between 1 and 100, not {self.per_example}")
        for name in ("p_mask", "p_replace", "p_ngram"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} must be between 0 and 1, not {value}")
        if self.p_mask + self.p_replace > 1.0:
            raise ConfigError("--p-mask and --p-replace together must not pass 1")
        if self.max_ngram < 1:
            raise ConfigError(f"--max-ngram must be at least 1, not {self.max_ngram}")
        unknown = set(self.splits) - {"train", "unlabeled", "valid", "test"}
        if unknown or not self.splits:
            named = ", ".join(sorted(unknown)) or "none"
            raise ConfigError(f"augment splits must be train and/or unlabeled, not {named}")
        if {"valid", "test"} & set(self.splits):
            raise ConfigError("valid and test are never augmented: their texts must stay the user's own")


@dataclass(frozen=True)
class AugmentResult(JobResult):
    """What ``kdstudio augment --json`` prints."""

    sources: int  # examples of the chosen splits
    skipped_already_augmented: int
    added: int
    duplicates_dropped: int
    augmented_total: int  # variants in the project after this run
    settings: dict  # the AugmentConfig used


@dataclass(frozen=True)
class RemoveVariantsResult(JobResult):
    """What ``kdstudio augment --remove --json`` prints."""

    removed: int


def vocabulary(texts: list[str], min_count: int = 2) -> list[str]:
    """Words seen at least ``min_count`` times, most frequent first (ties by the word)."""
    counts = Counter(word for text in texts for word in text.split())
    return sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))


def variants(text: str, vocab: list[str], cfg: AugmentConfig, rng: random.Random) -> list[str]:
    """Up to ``cfg.per_example`` distinct variants of ``text``, none equal to it."""
    words = text.split()
    if not words:
        return []
    out: list[str] = []
    seen = {" ".join(words)}
    # a few more tries than variants: short texts often repeat themselves
    for _ in range(cfg.per_example * 3):
        if len(out) >= cfg.per_example:
            break
        new = []
        for word in words:
            roll = rng.random()
            if roll < cfg.p_mask:
                new.append(cfg.mask_token)
            elif roll < cfg.p_mask + cfg.p_replace and vocab:
                new.append(vocab[rng.randrange(len(vocab))])
            else:
                new.append(word)
        if len(new) > 1 and rng.random() < cfg.p_ngram:
            n = rng.randint(1, min(cfg.max_ngram, len(new)))
            start = rng.randrange(len(new) - n + 1)
            new = new[start : start + n]
        candidate = " ".join(new)
        if candidate not in seen and any(w != cfg.mask_token for w in new):
            seen.add(candidate)
            out.append(candidate)
    return out


def example_rng(seed: int, example_id: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{example_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def augment(path: str | Path, config: AugmentConfig | None = None, *,
            cancel: CancelToken | None = None) -> Iterator[Event]:
    """Add variants of the chosen splits' examples to ``unlabeled``; yields progress, then
    ``Finished`` with the counts. Each chunk of examples is one transaction."""
    cfg = config or AugmentConfig()
    cfg.check()
    with Project(path) as project:
        if project.task != "classification":
            raise DataError("augmenting is for classification projects")
        augmented = project.augmented_ids()
        sources: list[tuple[int, str]] = []
        for split in cfg.splits:  # variants are never augmented again
            sources += [(ex_id, text) for ex_id, text, _ in project.examples(split) if ex_id not in augmented]
        if not sources:
            raise DataError(f"no examples in {' or '.join(cfg.splits)} to augment: import data first")
        done_ids = project.augmented_sources()
        vocab = vocabulary([text for _, text in sources])
        todo = [(i, t) for i, t in sources if i not in done_ids]
        # a variant equal to any text of the project is dropped: above all, a valid or test text
        # must not come back into training through the back door
        existing = set().union(*(project.texts_in_split(split) for split in ("train", "valid", "test", "unlabeled")))
        total, already = len(sources), len(sources) - len(todo)
        clock = EtaClock(total, already)
        added = duplicates = 0
        yield Progress("augment", already, total, info={"added": 0})
        for start in range(0, len(todo), CHUNK):
            if cancel is not None:
                cancel.check()
            rows = []
            for ex_id, text in todo[start : start + CHUNK]:
                for variant in variants(text, vocab, cfg, example_rng(cfg.seed, ex_id)):
                    if variant in existing:
                        duplicates += 1
                        continue
                    existing.add(variant)
                    rows.append((variant, None, None, "unlabeled", SOURCE, ex_id, text_hash(variant)))
            with project.transaction():
                added += project.insert_examples(rows)
            done = already + min(start + CHUNK, len(todo))
            yield Progress("augment", done, total, eta_s=clock.eta(done), info={"added": added})
        result = AugmentResult(
            sources=total, skipped_already_augmented=already, added=added, duplicates_dropped=duplicates,
            augmented_total=len(project.augmented_ids()),
            settings={k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        )
    yield Finished(result)


def remove_variants(path: str | Path, *, cancel: CancelToken | None = None) -> Iterator[Event]:
    """Delete every variant, with the teacher answers on them, in one transaction."""
    with Project(path) as project, project.transaction():
        removed = project.remove_augmented()
    yield Finished(RemoveVariantsResult(removed=removed))
