"""A causal language model writing completions: the one way KD Studio generates text.

Training, evaluation, the comparison viewer, the cascade and the export's parity check all call
:func:`generate`, so what a student writes in the app is what it writes anywhere else. A prompt
is formatted with the student's template (:data:`DEFAULT_TEMPLATE`: the prompt and a newline) and
the completion is decoded greedily (``do_sample=False``, one beam) until the end-of-text token or
``max_new_tokens``, with the settings of :func:`generation_settings`: the same settings an
exported folder's ``generation_config.json`` holds, so ``transformers.pipeline("text-generation")``
on the export writes the same text.

Each :class:`Completion` carries what evaluation needs: the text, its token count, why it stopped,
the latency (a batch's time shared evenly by its rows) and the mean log-probability the model gave
its own tokens, the cascade's confidence: a student unsure of what it wrote hands the prompt to
the teacher.

Importing this module is cheap: torch loads on the first call.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

#: How a prompt is laid out for a generation student: the prompt, then a newline; the completion
#: follows and ends with the end-of-text token.
DEFAULT_TEMPLATE = "{prompt}\n"
DEFAULT_MAX_NEW_TOKENS = 64


def format_prompt(prompt: str, template: str = DEFAULT_TEMPLATE) -> str:
    """``prompt`` laid out as the student saw its prompts in training."""
    return template.replace("{prompt}", prompt)


@dataclass(frozen=True)
class Completion:
    text: str
    n_tokens: int  #: tokens generated, the end-of-text token included when it was generated
    mean_logprob: float  #: mean log-probability of those tokens under the model (≤ 0)
    latency_ms: float  #: wall time of the call that wrote it, divided by the batch's rows
    stopped: str  #: "eos" (the model ended it) or "max_tokens" (cut at ``max_new_tokens``)


def generation_settings(tokenizer: Any, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> dict[str, Any]:
    """The decoding settings: greedy, one beam, stop at the tokenizer's end-of-text token."""
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    return {"do_sample": False, "num_beams": 1, "max_new_tokens": int(max_new_tokens),
            "eos_token_id": eos, "pad_token_id": pad}


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    template: str = DEFAULT_TEMPLATE,
    batch_size: int = 1,
    max_prompt_tokens: int | None = None,
    sample: dict[str, Any] | None = None,
) -> Iterator[list[Completion]]:
    """Yield the completions of ``prompts``, a batch at a time, in order. Batches are left-padded;
    ``batch_size=1`` (the default) times each completion on its own, as a person serving the
    model would see it. A prompt longer than ``max_prompt_tokens`` keeps its last tokens.
    ``sample`` (``temperature``, ``top_p``...) samples instead of decoding greedily (a local
    teacher's option; students always decode greedily)."""
    import torch

    settings = generation_settings(tokenizer, max_new_tokens)
    if sample:
        settings.update(do_sample=True, **sample)
    device = next(model.parameters()).device
    model.eval()
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        for start in range(0, len(prompts), batch_size):
            texts = [format_prompt(p, template) for p in prompts[start : start + batch_size]]
            t0 = time.perf_counter()
            ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
            if max_prompt_tokens:
                ids = [i[-max_prompt_tokens:] for i in ids]
            width = max(len(i) for i in ids)
            pad = settings["pad_token_id"]
            input_ids = torch.tensor([[pad] * (width - len(i)) + i for i in ids], device=device)
            mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids], device=device)
            with torch.inference_mode():
                out = model.generate(input_ids=input_ids, attention_mask=mask, output_scores=True,
                                     return_dict_in_generate=True, **settings)
                new = out.sequences[:, width:]
                logprobs = model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
            ms = (time.perf_counter() - t0) * 1000.0 / len(texts)
            batch = []
            for row in range(len(texts)):
                tokens = new[row].tolist()
                eos_at = next((k for k, t in enumerate(tokens) if t == settings["eos_token_id"]), None)
                n = len(tokens) if eos_at is None else eos_at + 1
                kept = tokens[: n if eos_at is None else eos_at]
                lp = logprobs[row, :n].float()
                batch.append(Completion(
                    text=tokenizer.decode(kept, skip_special_tokens=True).strip(),
                    n_tokens=n,
                    mean_logprob=float(lp.mean()) if n else 0.0,
                    latency_ms=ms,
                    stopped="max_tokens" if eos_at is None else "eos",
                ))
            yield batch
    finally:
        tokenizer.padding_side = side


def generate_all(model: Any, tokenizer: Any, prompts: Sequence[str], **kwargs: Any) -> list[Completion]:
    """:func:`generate`, gathered into one list."""
    return [c for batch in generate(model, tokenizer, prompts, **kwargs) for c in batch]


__all__ = ["DEFAULT_MAX_NEW_TOKENS", "DEFAULT_TEMPLATE", "Completion", "format_prompt", "generate", "generate_all",
           "generation_settings"]
