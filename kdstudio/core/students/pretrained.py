"""Hugging Face pieces of the students: loading a pretrained classifier with a new head, cutting
a teacher down to K layers, and keeping transformers quiet while it loads. transformers and torch
load inside the functions."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kdstudio.core.errors import ConfigError

_LAYER_LISTS = ("encoder.layer", "transformer.layer", "encoder.layers", "layers", "layer")
_LAYER_COUNTS = ("num_hidden_layers", "n_layers", "num_layers")


@contextmanager
def quiet_hf() -> Iterator[None]:
    """Silence transformers' progress bars and load reports ("some weights are newly
    initialized" is expected when a head is replaced)."""
    import logging

    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity(logging.ERROR)
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def label_maps(labels: Sequence[str] | None, n_labels: int) -> dict[str, Any]:
    """``id2label`` / ``label2id`` for a Hugging Face config (``LABEL_i`` when unnamed)."""
    names = list(labels) if labels else [f"LABEL_{i}" for i in range(n_labels)]
    return {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}


def load_pretrained_classifier(source: str, n_labels: int, maps: dict[str, Any]) -> Any:
    """``AutoModelForSequenceClassification`` from ``source`` with its head resized to ``n_labels``;
    a source that does not load is a one-line ``ConfigError``."""
    from transformers import AutoModelForSequenceClassification

    try:
        with quiet_hf():
            return AutoModelForSequenceClassification.from_pretrained(
                source, num_labels=n_labels, ignore_mismatched_sizes=True, trust_remote_code=False, **maps
            )
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot load the pretrained student {source!r}: {first}") from None


def load_pretrained_causal_lm(source: str) -> Any:
    """``AutoModelForCausalLM`` from ``source`` (a folder, a hub id, or a KD Studio generation
    student or run folder); a source that does not load is a one-line ``ConfigError``."""
    from transformers import AutoModelForCausalLM

    from kdstudio.core.students.tokenizer import causal_lm_folder

    try:
        with quiet_hf():
            return AutoModelForCausalLM.from_pretrained(causal_lm_folder(source), trust_remote_code=False)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot load the pretrained causal LM {source!r}: {first}") from None


def keep_alternate_layers(model: Any, k: int) -> list[int]:
    """Keep ``k`` evenly spaced layers (0, 2, 4… when halving, as DistilBERT was initialised)."""
    import torch

    base = model.base_model
    for dotted in _LAYER_LISTS:
        *path, name = dotted.split(".")
        parent = base
        for attr in path:
            parent = getattr(parent, attr, None) if parent is not None else None
        layers = getattr(parent, name, None) if parent is not None else None
        if isinstance(layers, torch.nn.ModuleList):
            break
    else:
        raise ConfigError(f"teacher-layers: cannot find the layer list of a {type(model).__name__}")
    if not 1 <= k <= len(layers):
        raise ConfigError(
            f"teacher-layers:{k}: the teacher has {len(layers)} layers; choose K from 1 to {len(layers)}"
        )
    keep = [round(i * len(layers) / k) for i in range(k)]
    setattr(parent, name, torch.nn.ModuleList(layers[i] for i in keep))
    for attr in _LAYER_COUNTS:
        if hasattr(model.config, attr):
            setattr(model.config, attr, k)
    return keep
