"""Distillation losses: small pure functions on tensors, registered by name in ``LOSSES``.

Teachers are stored as probabilities, not logits, so black-box teachers (an API that returns a
label distribution) distil exactly like local ones. For probabilities ``p = softmax(z)``,
tempering ``p^(1/T)`` and renormalising equals ``softmax(z / T)``, so the Hinton et al. (2015)
loss is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LOSSES: dict[str, Callable[..., torch.Tensor]] = {}


def register(name: str) -> Callable[[Callable[..., torch.Tensor]], Callable[..., torch.Tensor]]:
    def add(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        LOSSES[name] = fn
        return fn

    return add


def temper(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """``p^(1/T)`` renormalised over the last axis (= ``softmax(z / T)`` when ``p = softmax(z)``).

    Zero probabilities stay zero; computed in log space so small ``T`` does not overflow.
    """
    if temperature == 1.0:
        return probs / probs.sum(-1, keepdim=True)
    return torch.softmax(torch.log(probs.clamp_min(0.0)) / temperature, dim=-1)


@register("kd")
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
    per_row = (torch.xlogy(target, target) - target * log_q).sum(-1)
    return temperature * temperature * _masked_mean(per_row, weight)


@register("ce")
def ce_loss(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with gold labels; rows labelled ``-100`` (no gold) are ignored; none gives 0."""
    known = labels >= 0
    if not bool(known.any()):
        return student_logits.sum() * 0.0
    return F.cross_entropy(student_logits.float()[known], labels[known])


@register("hidden_mse")
def hidden_mse_loss(
    student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """Mean squared error between (already projected) student and teacher token states,
    over real tokens only (as in TinyBERT's hidden-state loss, arXiv:1909.10351)."""
    mask = attention_mask.unsqueeze(-1).to(student_hidden.dtype)
    squared = ((student_hidden.float() - teacher_hidden.float()) ** 2) * mask
    return squared.sum() / (mask.sum() * student_hidden.shape[-1]).clamp_min(1.0)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_probs: torch.Tensor | None,
    labels: torch.Tensor,
    *,
    temperature: float,
    alpha: float,
    has_teacher: torch.Tensor | None = None,
    hard_labels: bool = False,
) -> dict[str, torch.Tensor]:
    """``loss = alpha · kd + (1 − alpha) · ce``; with ``hard_labels`` only ``ce``.

    Returns the parts ``{"loss", "kd", "ce"}`` so they can be logged separately.
    """
    ce = ce_loss(student_logits, labels)
    if hard_labels or teacher_probs is None:
        return {"loss": ce, "kd": ce.detach() * 0.0, "ce": ce}
    kd = kd_loss(student_logits, teacher_probs, temperature, has_teacher)
    return {"loss": alpha * kd + (1.0 - alpha) * ce, "kd": kd, "ce": ce}


def kl_per_example(teacher_probs: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """``KL(teacher ‖ student)`` at ``T = 1`` for each row (the per-example disagreement)."""
    p = teacher_probs.float() / teacher_probs.float().sum(-1, keepdim=True)
    return (torch.xlogy(p, p) - p * F.log_softmax(student_logits.float(), dim=-1)).sum(-1)


def _masked_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return values.mean()
    weight = weight.to(values.dtype)
    return (values * weight).sum() / weight.sum().clamp_min(1.0)
