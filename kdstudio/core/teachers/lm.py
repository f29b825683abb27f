"""``lm:`` teachers: a local causal language model.

- Generation: completions written by :func:`kdstudio.core.generate.generate`, the routine KD
  Studio's students write with, so teacher and student decode the same way: batched (sorted by
  length, left-padded), greedy by default, or sampled with the ``temperature`` option (and
  ``top_p``, ``seed``), ``max_new_tokens`` (the harvest's ``--max-tokens``; default
  :data:`DEFAULT_MAX_NEW_TOKENS`), on the GPU when there is one. The prompt is
  :data:`GENERATION_PROMPT`: the instructions when the project has some, the text and a newline:
  the layout KD Studio's generation students are trained on.
- A completion that reaches ``max_new_tokens`` without the end-of-text token is cut off: it is
  stored as failed with the reason (as a Claude answer cut off at ``max_tokens`` is), since a
  partial completion would teach the student to stop mid-sentence; ``--max-tokens`` raises the
  limit, ``--retry-failed`` asks again with twice the limit it hit, and the option
  ``keep_cut_off`` keeps such completions (method ``greedy-cut-off`` or ``sampled-cut-off``).
  ``max_new_tokens`` is left out of the fingerprint: a longer limit changes only the completions
  the shorter one cut off, so they are asked again under the same teacher.
- ``lm:FOLDER`` also takes a KD Studio generation student (a folder with ``student.json``,
  ``model/`` and ``tokenizer/``) or a run folder (its ``best/``, else ``last/``): the prompt is then
  laid out with the student's own template and no instructions, as it was trained, and its
  ``max_new_tokens`` is the default.
- Classification: the log-likelihood of each label's verbalisation (`` label name``) after a
  prompt, summed over its tokens and softmaxed over the labels into a distribution.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kdstudio.core.errors import ConfigError
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
#: A generation prompt: the instructions (with a newline) when given, the text, a newline: what
#: ``kdstudio.core.generate.DEFAULT_TEMPLATE`` lays out for a student.
GENERATION_PROMPT = "{instructions}{text}\n"
DEFAULT_MAX_NEW_TOKENS = 128
_CUT_OFF = re.compile(r"cut off at max_new_tokens=(\d+)")


def student_source(model: str) -> tuple[Path, dict[str, Any]] | None:
    """``(student folder, its student.json)`` when ``model`` is a KD Studio generation student or
    run folder, else None."""
    path = Path(model).expanduser()
    if not path.is_dir():
        return None
    for folder in (path, path / "best", path / "last"):
        meta_file = folder / "student.json"
        if meta_file.is_file():
            meta = json.loads(meta_file.read_text())
            if meta.get("task") != "generation":
                raise ConfigError(f"lm:{model} is a {meta.get('task', 'classification')} student; an lm: teacher "
                                  "needs a generation student (a causal language model)")
            return folder, meta
    return None


class CausalLMTeacher(LocalTeacher):
    kind = "lm"

    def __init__(self, model: str, context: TeacherContext) -> None:
        self.model, self.context = model, context
        self.spec = f"lm:{model}"
        opts = context.options
        self.student = student_source(model) if context.task == "generation" else None
        meta = self.student[1] if self.student else {}
        default_prompt = GENERATION_PROMPT if context.task == "generation" else DEFAULT_PROMPT
        self.prompt = opts.get("prompt") or (meta.get("template") if self.student else None) or default_prompt
        self.max_new_tokens = int(opts.get("max_new_tokens") or opts.get("max_tokens") or meta.get("max_new_tokens")
                                  or DEFAULT_MAX_NEW_TOKENS)
        self._limit_given = bool(opts.get("max_new_tokens") or opts.get("max_tokens"))
        self.max_length = int(opts.get("max_length", 512))
        self.batch_size = int(opts.get("batch_size", 8))
        self.trust_remote_code = bool(opts.get("trust_remote_code", False))
        self.device = opts.get("device")
        temperature = float(opts.get("temperature") or 0.0)
        if temperature < 0:
            raise ConfigError(f"temperature must be >= 0 (0: greedy), not {temperature}")
        self.sample: dict[str, Any] | None = None
        if temperature > 0:
            self.sample = {"temperature": temperature, "top_p": float(opts.get("top_p") or 1.0)}
            if not 0 < self.sample["top_p"] <= 1:
                raise ConfigError(f"top_p must be in (0, 1], not {self.sample['top_p']}")
        self.seed = int(opts.get("seed") or 0)
        self.keep_cut_off = bool(opts.get("keep_cut_off", False))
        self._model: Any = None

    def settings(self) -> dict[str, Any]:
        """What changes the answers. ``max_new_tokens`` is not in it (see the module docstring)."""
        s: dict[str, Any] = {"prompt": self.prompt, "instructions": self.context.instructions}
        if self.context.task == "generation":
            if self.student:
                s.update(student=True, instructions="")
            s["decoding"] = {**self.sample, "seed": self.seed} if self.sample else "greedy"
            if self.keep_cut_off:
                s["keep_cut_off"] = True
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
        tokenizer_source = source
        if self.student:
            source, tokenizer_source = str(self.student[0] / "model"), str(self.student[0] / "tokenizer")
        self.device = pick_device(self.device)
        self._tokenizer = load_pretrained(AutoTokenizer, tokenizer_source, trust_remote_code=self.trust_remote_code)
        if self._tokenizer.pad_token is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token or self._tokenizer.unk_token
        self._model = load_pretrained(AutoModelForCausalLM, source,
                                      trust_remote_code=self.trust_remote_code).to(self.device).eval()

    def parameter_count(self) -> int:
        self._load()
        return sum(p.numel() for p in self._model.parameters())

    def prepare(self, project: Project, teacher_id: int, *, cancel: CancelToken) -> Iterator[Event]:
        self._load()
        if self.context.task == "generation":
            raised = self._raise_cut_off_limit(project, teacher_id)
            if raised:
                yield Log(raised)
            decoding = (f"sampled (temperature {self.sample['temperature']:g}, top_p {self.sample['top_p']:g}, "
                        f"seed {self.seed})" if self.sample else "greedy")
            yield Log(f"teacher {self.spec} (generation) on {self.device}: {decoding}, max_new_tokens "
                      f"{self.max_new_tokens}" + (", a KD Studio student with its own prompt template" if self.student
                                                  else ""))
        else:
            yield Log(f"teacher {self.spec} ({self.context.task}) on {self.device}")

    def _raise_cut_off_limit(self, project: Project, teacher_id: int) -> str | None:
        """On a retry without a limit given, completions cut off before get twice the limit they hit."""
        if not self.context.options.get("retry_failed") or self._limit_given:
            return None
        limits = [int(m.group(1)) for _, _, reason in project.failures(teacher_id, limit=100_000)
                  if (m := _CUT_OFF.search(reason or ""))]
        if not limits:
            return None
        self.max_new_tokens = max(self.max_new_tokens, 2 * max(limits))
        return (f"{len(limits)} completion(s) were cut off at max_new_tokens={max(limits)}; asking again with "
                f"max_new_tokens={self.max_new_tokens}")

    def _prompt(self, text: str) -> str:
        if self.student:  # laid out as the student was trained: its template, no instructions
            return self.prompt.replace("{prompt}", text)
        instructions = f"{self.context.instructions.strip()}\n" if self.context.instructions.strip() else ""
        return self.prompt.replace("{instructions}", instructions).replace("{text}", text)

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

    def complete(self, texts: Sequence[str]) -> list[Any]:
        """The completions (``kdstudio.core.generate.Completion``) of ``texts``, as one batch."""
        import torch

        from kdstudio.core.generate import generate

        self._load()
        if self.sample:
            torch.manual_seed(self.seed)
        with autocast(self.device):
            return [c for batch in generate(self._model, self._tokenizer, [self._prompt(t) for t in texts],
                                            max_new_tokens=self.max_new_tokens, template="{prompt}",
                                            batch_size=len(texts), max_prompt_tokens=self.max_length,
                                            sample=self.sample) for c in batch]

    def _completion_output(self, example: int, completion: Any, ms: float) -> TeacherOutput:
        method = "sampled" if self.sample else "greedy"
        if completion.stopped == "max_tokens":
            if not self.keep_cut_off:
                return TeacherOutput(example, status="failed", method=method, latency_ms=ms, error=(
                    f"completion cut off at max_new_tokens={self.max_new_tokens} without an end-of-text token; "
                    "a partial completion is not kept: raise --max-tokens, or --retry-failed asks again with twice "
                    "the limit (--option keep_cut_off=true keeps it)"))
            method += "-cut-off"
        if not completion.text:
            return TeacherOutput(example, status="failed", method=method, latency_ms=ms,
                                 error="empty completion (the model wrote the end-of-text token first)")
        return TeacherOutput(example, completion=completion.text, method=method, latency_ms=ms)

    def answer(self, items: Sequence[Item], *, cancel: CancelToken) -> Answers:
        for batch in length_sorted_batches(items, self.batch_size):
            cancel.check()
            t0 = time.perf_counter()
            if self.context.task == "generation":
                completions = self.complete([t for _, t in batch])
                ms = timed_ms(t0, len(batch))
                yield [self._completion_output(i, c, ms) for (i, _), c in zip(batch, completions, strict=True)]
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
