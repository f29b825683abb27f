"""Vocabulary pruning: a student that shares the teacher's WordPiece tokenizer keeps only the word
pieces its project uses.

The teacher's table has 30,522 rows (BERT, MiniLM); a project's texts use a few thousand of them,
and the rest are most of a small student's parameters. :func:`prune_wordpiece` keeps every piece
that the teacher's tokenizer produces on the given texts (a project passes all its texts: every
split, unlabeled rows and variants), the special tokens, and each ASCII character alone and as a
``##`` continuation, and renumbers them in the teacher's order. It returns a new fast tokenizer
whose ids *are* the student's rows, so training, evaluation, the viewer and every export use the
student's saved tokenizer as it is, and ``transformers.pipeline`` or onnxruntime get the same ids.

What the pruned tokenizer gives:

- any text of the project: exactly the teacher's pieces, renumbered (WordPiece takes the longest
  piece of the vocabulary at each position; every piece the teacher took is kept, and a shorter
  vocabulary offers no longer one). :func:`prune_wordpiece` checks this on the texts it was given;
- a new text: the same normalizer, pre-tokenizer and WordPiece rule over the kept pieces, longest
  first, and [UNK] for a word it cannot spell, as the teacher's tokenizer does with its own
  vocabulary. Thanks to the kept characters an ASCII word always spells, so a new word splits into
  kept pieces (sometimes other ones than the teacher's) instead of vanishing.

``PrunedVocab.teacher_ids`` maps each new id to the teacher's id: the rows of the teacher's
embedding table a student starts from, and what a frozen teacher reads (``--hidden-mse``).
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from kdstudio.core.errors import KDStudioError

#: The kinds of tokenizer this module prunes (a BPE's merges would need rewriting, not just renumbering).
PRUNABLE = ("WordPiece",)
#: Characters kept whatever the texts say, so a new ASCII word always spells.
SPELLING = string.ascii_letters + string.digits + string.punctuation
CHECKED_TEXTS = 2000  # texts re-encoded to check the renumbering (all of them in the tests)


class PruningError(KDStudioError):
    """The pruned tokenizer would not reproduce the teacher's pieces (a tokenizer this module
    does not understand): training keeps the full vocabulary and says why."""


@dataclass(frozen=True)
class PrunedVocab:
    """A pruned tokenizer and where its rows come from in the teacher's vocabulary."""

    tokenizer: Any  # a PreTrainedTokenizerFast: its ids are the student's embedding rows
    teacher_ids: list[int]  # new id → teacher id, increasing
    teacher_size: int  # rows in the teacher's table

    @property
    def size(self) -> int:
        return len(self.teacher_ids)

    def note(self, n_texts: int) -> str:
        """A line for the run's log."""
        return (f"vocabulary pruned to the {self.size:,} word pieces that {n_texts:,} project texts use "
                f"(of the teacher's {self.teacher_size:,}; --vocab full keeps them all)")


def wordpiece_state(tokenizer: Any) -> dict[str, Any] | None:
    """The serialized backend of a fast WordPiece tokenizer, else None (not prunable)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    state = json.loads(backend.to_str())
    return state if (state.get("model") or {}).get("type") in PRUNABLE else None


def prune_wordpiece(tokenizer: Any, texts: Iterable[str]) -> PrunedVocab | None:
    """Keep the pieces ``texts`` use (see the module docstring); None when the tokenizer is not a
    fast WordPiece, or when pruning would keep every piece anyway."""
    from kdstudio.core.students.tokenizer import _plain_backend

    state = wordpiece_state(tokenizer)
    if state is None:
        return None
    vocab: dict[str, int] = state["model"]["vocab"]
    plain = _plain_backend(tokenizer)
    used: set[int] = set()
    sample: list[str] = []
    for chunk in _chunks(texts, 1000):
        for encoding in plain.encode_batch(chunk, add_special_tokens=False):
            used.update(encoding.ids)
        if len(sample) < CHECKED_TEXTS:
            sample += chunk[: CHECKED_TEXTS - len(sample)]
    used.update(int(i) for i in tokenizer.all_special_ids)
    used.update(int(t["id"]) for t in state.get("added_tokens") or () if t.get("special"))
    prefix = state["model"].get("continuing_subword_prefix") or "##"
    for char in SPELLING:
        for piece in (char, prefix + char):
            if piece in vocab:
                used.add(vocab[piece])
    if len(used) >= len(vocab):
        return None
    teacher_ids = sorted(used)
    new_id = {old: new for new, old in enumerate(teacher_ids)}
    by_id = {i: piece for piece, i in vocab.items()}
    state["model"]["vocab"] = {by_id[old]: new for old, new in new_id.items()}
    _renumber(state, new_id)
    state["padding"] = state["truncation"] = None  # KD Studio cuts at the run's max_length itself
    pruned = _wrap(state, tokenizer)
    _check(tokenizer, pruned, sample, teacher_ids)
    return PrunedVocab(pruned, teacher_ids, len(vocab))


def teacher_ids_of(pruned: Any, teacher: Any) -> list[int] | None:
    """For a saved pruned tokenizer: each of its ids' id in the ``teacher`` tokenizer (None when
    a piece is missing there, i.e. it was not pruned from this teacher)."""
    teacher_vocab = teacher.get_vocab()
    mine = sorted(pruned.get_vocab().items(), key=lambda kv: kv[1])
    ids = [teacher_vocab.get(piece) for piece, _ in mine]
    return None if any(i is None for i in ids) else ids  # type: ignore[return-value]


def _renumber(node: Any, new_id: dict[int, int]) -> None:
    """Rewrite the ids that a tokenizer's JSON keeps outside its vocabulary: added tokens, padding,
    and the post-processor's special tokens ([CLS] … [SEP]), in any nesting."""
    for token in node.get("added_tokens") or ():
        token["id"] = new_id.get(token["id"], token["id"])
    padding = node.get("padding")
    if isinstance(padding, dict) and "pad_id" in padding:
        padding["pad_id"] = new_id.get(padding["pad_id"], padding["pad_id"])
    _renumber_processor(node.get("post_processor"), new_id)


def _renumber_processor(proc: Any, new_id: dict[int, int]) -> None:
    if not isinstance(proc, dict):
        return
    for key in ("sep", "cls"):  # BertProcessing / RobertaProcessing: [token, id]
        pair = proc.get(key)
        if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], int):
            pair[1] = new_id.get(pair[1], pair[1])
    for special in (proc.get("special_tokens") or {}).values():  # TemplateProcessing
        special["ids"] = [new_id.get(i, i) for i in special.get("ids", [])]
    for inner in proc.get("processors") or ():  # Sequence
        _renumber_processor(inner, new_id)


def _wrap(state: dict[str, Any], original: Any) -> Any:
    """The pruned backend as a ``PreTrainedTokenizerFast`` with the original's special tokens and
    maximum length."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer.from_str(json.dumps(state))
    specials = {
        name: getattr(original, name)
        for name in ("unk_token", "pad_token", "cls_token", "sep_token", "mask_token", "bos_token", "eos_token")
        if getattr(original, name, None) is not None
    }
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, model_max_length=original.model_max_length,
        padding_side=getattr(original, "padding_side", "right"), **specials,
    )


def _check(teacher: Any, pruned: Any, texts: list[str], teacher_ids: list[int]) -> None:
    """The pruned tokenizer gives the teacher's pieces, renumbered, on ``texts`` (with special tokens)."""
    if not texts:
        return
    from kdstudio.core.students.tokenizer import _plain_backend

    mine = _plain_backend(pruned).encode_batch(texts)
    theirs = _plain_backend(teacher).encode_batch(texts)
    for text, a, b in zip(texts, mine, theirs, strict=True):
        if [teacher_ids[i] for i in a.ids] != b.ids:
            raise PruningError(f"the pruned vocabulary splits {text[:60]!r} differently from the teacher's")


def _chunks(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    it = iter(texts)
    while chunk := list(islice(it, size)):
        yield chunk
