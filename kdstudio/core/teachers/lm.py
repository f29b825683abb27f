"""``lm:`` teachers: a local causal language model.

- Generation tasks: greedy completions (batched, left-padded), ``max_new_tokens`` from options.
- Classification: the log-likelihood of each label's verbalisation (`` label name``) after a
  prompt, summed over its tokens and softmaxed over the labels into a distribution.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from kdstudio.core.events import CancelToken, Event, Log
from kdstudio.core.store import TeacherOutput
from kdstudio.core.teachers.base import Answers, Item, TeacherContext
from kdstudio.core.teachers.local import (
    LocalTeacher,
    autocast,
    length_sorted_batches,
    load_pretrained,
    pick_device,
    resolve_model,
    timed_ms,
)

if TYPE_CHECKING:
    from kdstudio.core.store import Project

DEFAULT_PROMPT = "{instructions}Text: {text}\nLabel:"


class CausalLMTeacher(LocalTeacher):
    kind = "lm"

    def __init__(self, model: str, context: TeacherContext) -> None:
        self.model, self.context = model, context
        self.spec = f"lm:{model}"
        opts = context.options
        self.prompt = opts.get("prompt", DEFAULT_PROMPT)
        self.max_new_tokens = int(opts.get("max_new_tokens", 64))
        self.max_length = int(opts.get("max_length", 512))
        self.batch_size = int(opts.get("batch_size", 8))
        self.trust_remote_code = bool(opts.get("trust_remote_code", False))
        self.device = opts.get("device")
        self._model: Any = None

    def settings(self) -> dict[str, Any]:
        s: dict[str, Any] = {"prompt": self.prompt, "instructions": self.context.instructions}
        if self.context.task == "generation":
            s["max_new_tokens"] = self.max_new_tokens
        else:
            s["verbalisers"] = self._verbalisers()
        return s

    def _verbalisers(self) -> list[str]:
        return [" " + name.replace("_", " ") for name in self.context.labels]

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = resolve_model(self.model)
        self.device = pick_device(self.device)
        self._tokenizer = load_pretrained(AutoTokenizer, source, trust_remote_code=self.trust_remote_code)
        if self._tokenizer.pad_token is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token or self._tokenizer.unk_token
        self._model = load_pretrained(AutoModelForCausalLM, source,
                                      trust_remote_code=self.trust_remote_code).to(self.device).eval()

    def parameter_count(self) -> int:
        self._load()
        return sum(p.numel() for p in self._model.parameters())

    def prepare(self, project: Project, teacher_id: int, *, cancel: CancelToken) -> Iterator[Event]:
        self._load()
        yield Log(f"teacher {self.spec} ({self.context.task}) on {self.device}")

    def _prompt(self, text: str) -> str:
        instructions = f"{self.context.instructions.strip()}\n" if self.context.instructions.strip() else ""
        return self.prompt.format(instructions=instructions, text=text)

    def label_probs(self, text: str):
        """Softmax over labels of log p(verbaliser | prompt), each verbaliser scored in one batch."""
        import torch

        self._load()
        tok = self._tokenizer
        prompt_ids = tok(self._prompt(text), add_special_tokens=False)["input_ids"]
        prompt_ids = prompt_ids[-(self.max_length - 16):]
        label_ids = [tok(v, add_special_tokens=False)["input_ids"] for v in self._verbalisers()]
        seqs = [prompt_ids + ids for ids in label_ids]
        width = max(len(s) for s in seqs)
        pad = tok.pad_token_id
        input_ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=self.device)
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=self.device)
        with torch.inference_mode(), autocast(self.device):
            logp = torch.log_softmax(self._model(input_ids=input_ids, attention_mask=mask).logits.float(), dim=-1)
        scores = []
        for row, ids in enumerate(label_ids):
            positions = range(len(prompt_ids) - 1, len(prompt_ids) - 1 + len(ids))
            scores.append(sum(logp[row, pos, tid] for pos, tid in zip(positions, ids, strict=True)))
        return torch.softmax(torch.stack(scores), dim=0).cpu()

    def predict_probs(self, texts: Sequence[str]):
        import torch

        return torch.stack([self.label_probs(t) for t in texts]).numpy()

    def complete(self, texts: Sequence[str]) -> list[str]:
        import torch

        self._load()
        tok = self._tokenizer
        tok.padding_side = "left"
        enc = tok([self._prompt(t) for t in texts], return_tensors="pt", padding=True, truncation=True,
                  max_length=self.max_length).to(self.device)
        with torch.inference_mode(), autocast(self.device):
            out = self._model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                       pad_token_id=tok.pad_token_id)
        return [s.strip() for s in tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)]

    def answer(self, items: Sequence[Item], *, cancel: CancelToken) -> Answers:
        for batch in length_sorted_batches(items, self.batch_size):
            cancel.check()
            t0 = time.perf_counter()
            if self.context.task == "generation":
                texts = self.complete([t for _, t in batch])
                ms = timed_ms(t0, len(batch))
                yield [TeacherOutput(example=i, completion=c, method="greedy", latency_ms=ms)
                       for (i, _), c in zip(batch, texts, strict=True)]
            else:
                outputs = []
                for ex_id, text in batch:
                    cancel.check()
                    outputs.append(TeacherOutput(example=ex_id, probs=self.label_probs(text).tolist(),
                                                 method="label-likelihood"))
                ms = timed_ms(t0, len(batch))
                for o in outputs:
                    o.latency_ms = ms
                yield outputs

    def close(self) -> None:
        self._model = None
