"""Distillation losses: small pure functions on tensors, registered by name in ``LOSSES``.

A run's loss is a weighted sum of registered terms. :func:`loss_terms` reads them off the
config — ``kd`` (weight ``alpha``, temperature ``T``) + ``ce`` (weight ``1 − alpha``), ``ce``
alone for a hard-label run, ``hidden_mse`` when its weight is set — and :func:`combined_loss`
computes them on a batch, a dict of named tensors. ``register`` records which batch entries
feed which argument, so a new term is one decorated function and needs no change to the loop.
A generation run (``train.generation``) uses ``ce`` on the completion tokens, plus ``token_kd``
(the teacher's next-token distributions, computed alongside) with ``--kd token``.

Teachers are stored as probabilities, not logits, so black-box teachers (an API that returns a
label distribution) distil exactly like local ones. For probabilities ``p = softmax(z)``,
tempering ``p^(1/T)`` and renormalising equals ``softmax(z / T)``, so the Hinton et al. (2015)
loss is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from kdstudio.core.predict import kl_divergence

LOSSES: dict[str, Callable[..., torch.Tensor]] = {}
#: For each registered loss: its argument name → the batch entry that feeds it.
LOSS_INPUTS: dict[str, dict[str, str]] = {}


def register(name: str, **inputs: str) -> Callable[[Callable[..., torch.Tensor]], Callable[..., torch.Tensor]]:
    """Register a loss under ``name``; ``inputs`` maps its tensor arguments to batch entries
    (``student_logits="logits"``). Other arguments come from the term's options."""

    def add(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        LOSSES[name] = fn
        LOSS_INPUTS[name] = dict(inputs)
        return fn

    return add


@dataclass(frozen=True)
class Term:
    """One weighted term of a run's loss: ``weight · LOSSES[name](batch inputs, **options)``."""

    name: str
    weight: float = 1.0
    options: Mapping[str, Any] = field(default_factory=dict)


def temper(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """``p^(1/T)`` renormalised over the last axis (= ``softmax(z / T)`` when ``p = softmax(z)``).

    Zero probabilities stay zero; computed in log space so small ``T`` does not overflow.
    """
    if temperature == 1.0:
        return probs / probs.sum(-1, keepdim=True)
    return torch.softmax(torch.log(probs.clamp_min(0.0)) / temperature, dim=-1)


@register("kd", student_logits="logits", teacher_probs="teacher_probs", weight="has_teacher")
def kd_loss(
    student_logits: torch.Tensor,
    teacher_probs: torch.Tensor,
    temperature: float = 1.0,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Hinton et al. 2015 (arXiv:1503.02531): ``T² · KL(p_T ‖ softmax(z_s / T))``, mean over rows.

    ``p_T`` is the teacher distribution tempered by :func:`temper`. The ``T²`` factor keeps the
    gradient scale independent of ``T`` (soft-target gradients shrink as ``1/T²``). ``weight``
    (0/1 per row) restricts the mean to rows that have a teacher target; no such row gives 0.
    """
    target = temper(teacher_probs.float(), temperature)
    log_q = F.log_softmax(student_logits.float() / temperature, dim=-1)
    per_row = kl_divergence(target, log_q)
    return temperature * temperature * _masked_mean(per_row, weight)


@register("ce", student_logits="logits", labels="gold")
def ce_loss(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with gold labels, ``−log softmax(z)[y]`` averaged over rows; rows labelled
    ``-100`` (no gold) are ignored; none gives 0. A generation batch gives next-token logits
    ``(batch, positions, vocabulary)`` and the target token ids ``(batch, positions)``, ``-100``
    on the prompt and the padding: the mean over the completion tokens."""
    known = labels >= 0
    if not bool(known.any()):
        return student_logits.sum() * 0.0
    return F.cross_entropy(student_logits.float()[known], labels[known])


@register("token_kd", student_logits="logits", teacher_logits="teacher_logits", labels="gold")
def token_kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Token-level KD for a causal LM (white-box): ``T² · KL(softmax(z_t / T) ‖ softmax(z_s / T))``
    on the next-token distributions, averaged over the positions whose target is a completion
    token (``labels`` ≠ -100): Hinton et al.'s (2015) loss at every position, the word-level KD of
    Kim and Rush (2016, arXiv:1606.07947). Teacher and
    student logits share the vocabulary axis; no completion token gives 0."""
    known = labels >= 0
    if not bool(known.any()):
        return student_logits.sum() * 0.0
    target = torch.softmax(teacher_logits[known].float() / temperature, dim=-1)
    log_q = F.log_softmax(student_logits[known].float() / temperature, dim=-1)
    return temperature * temperature * kl_divergence(target, log_q).mean()


def hidden_mse_loss(
    student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """Mean squared error between (already projected) student and teacher token states,
    over real tokens only (as in TinyBERT's hidden-state loss, arXiv:1909.10351)."""
    mask = attention_mask.unsqueeze(-1).to(student_hidden.dtype)
    squared = ((student_hidden.float() - teacher_hidden.float()) ** 2) * mask
    return squared.sum() / (mask.sum() * student_hidden.shape[-1]).clamp_min(1.0)


@register(
    "hidden_mse",
    student_states="student_states",
    teacher_states="teacher_states",
    attention_mask="attention_mask",
)
def layer_mse_loss(
    student_states: Sequence[torch.Tensor],
    teacher_states: Sequence[torch.Tensor],
    attention_mask: torch.Tensor,
) -> torch.Tensor:
    """:func:`hidden_mse_loss` averaged over the student's layers, each paired with the teacher
    layer at the same depth (TinyBERT's uniform mapping, arXiv:1909.10351): student layer
    ``i`` of ``L_s`` ↔ teacher layer ``round(i · L_t / L_s)``.

    ``student_states`` are the student's projected layer outputs (layers 1…L_s, no embeddings);
    ``teacher_states`` are the teacher's, embeddings first (0…L_t)."""
    ls, lt = len(student_states), len(teacher_states) - 1
    return (
        sum(
            hidden_mse_loss(student_states[i - 1], teacher_states[round(i * lt / ls)], attention_mask)
            for i in range(1, ls + 1)
        )
        / ls
    )


def loss_terms(
    *, hard_labels: bool, alpha: float, temperature: float, hidden_mse: float = 0.0
) -> tuple[Term, ...]:
    """The terms of a classification run's loss (``TrainConfig`` fields): ``alpha · kd +
    (1 − alpha) · ce``; ``ce`` alone with ``hard_labels``; ``+ hidden_mse · hidden_mse`` when set."""
    if hard_labels:
        terms: tuple[Term, ...] = (Term("ce", 1.0),)
    else:
        terms = (Term("kd", alpha, {"temperature": temperature}), Term("ce", 1.0 - alpha))
    if hidden_mse > 0:
        terms += (Term("hidden_mse", hidden_mse),)
    return terms


def combined_loss(terms: Sequence[Term], batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Each term's value on ``batch`` (by its name) and their weighted sum (``"loss"``)."""
    parts: dict[str, torch.Tensor] = {}
    total: torch.Tensor | None = None
    for term in terms:
        fn, inputs = LOSSES[term.name], LOSS_INPUTS[term.name]
        value = fn(**{arg: batch[key] for arg, key in inputs.items()}, **term.options)
        parts[term.name] = value
        weighted = value if term.weight == 1.0 else term.weight * value
        total = weighted if total is None else total + weighted
    if total is None:
        raise ValueError("a loss needs at least one term")
    return {"loss": total, **parts}


def _masked_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return values.mean()
    weight = weight.to(values.dtype)
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


__all__ = [
    "LOSSES",
    "LOSS_INPUTS",
    "Term",
    "ce_loss",
    "combined_loss",
    "hidden_mse_loss",
    "kd_loss",
    "layer_mse_loss",
    "loss_terms",
    "register",
    "temper",
    "token_kd_loss",
]
