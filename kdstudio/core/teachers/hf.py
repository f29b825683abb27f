"""``hf:`` teachers: a local or hub AutoModelForSequenceClassification.

The model's ``id2label`` is matched to the project's labels by name, ignoring case. When a
project label has no match the harvest stops with the unmatched names and how to map them
(``options["label_map"]``: model label → project label) — never a silent guess by position.
Model labels the project does not use are dropped and the rest renormalised.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from kdstudio.core.errors import TeacherError
from kdstudio.core.events import CancelToken, Event, Log
from kdstudio.core.store import TeacherOutput
from kdstudio.core.teachers.base import Answers, Item, TeacherContext, TeacherModule
from kdstudio.core.teachers.local import (
    LocalTeacher,
    autocast,
    load_pretrained,
    pick_device,
    resolve_model,
    run_batches,
    timed_ms,
    token_batches,
)

if TYPE_CHECKING:
    from kdstudio.core.store import Project


def match_labels(model_labels: dict[int, str], project_labels: list[str],
                 label_map: dict[str, str] | None = None) -> list[int]:
    """For each project label, the index of the model output that holds it."""
    label_map = {k.lower(): v for k, v in (label_map or {}).items()}
    by_name: dict[str, int] = {}
    for idx, name in model_labels.items():
        target = label_map.get(str(name).lower(), str(name))
        by_name.setdefault(target.lower(), int(idx))
    missing = [name for name in project_labels if name.lower() not in by_name]
    if missing:
        raise TeacherError(
            f"the model's labels ({', '.join(str(v) for v in model_labels.values())}) do not cover the project's "
            f"({', '.join(missing)} missing); map them explicitly with --label-map MODEL_LABEL=PROJECT_LABEL,..."
        )
    return [by_name[name.lower()] for name in project_labels]


class HFClassifierTeacher(LocalTeacher):
    kind = "hf"

    def __init__(self, model: str, context: TeacherContext) -> None:
        self.model, self.context = model, context
        self.spec = f"hf:{model}"
        opts = context.options
        self.label_map = opts.get("label_map") or {}
        self.trust_remote_code = bool(opts.get("trust_remote_code", False))
        self.max_length = int(opts.get("max_length", 256))
        self.batch_size = int(opts.get("batch_size", 32))
        self.device = opts.get("device")
        self._model: Any = None
        if context.task != "classification":
            raise TeacherError("hf: teachers are sequence classifiers; use lm: or claude: for generation")

    def settings(self) -> dict[str, Any]:
        return {"label_map": self.label_map, "max_length": self.max_length}

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        source = resolve_model(self.model)
        self.device = pick_device(self.device)
        self._tokenizer = load_pretrained(AutoTokenizer, source, trust_remote_code=self.trust_remote_code)
        self._model = load_pretrained(AutoModelForSequenceClassification, source,
                                      trust_remote_code=self.trust_remote_code).to(self.device).eval()
        self._columns = match_labels(self._model.config.id2label, self.context.labels, self.label_map)

    def parameter_count(self) -> int:
        self._load()
        return sum(p.numel() for p in self._model.parameters())

    def prepare(self, project: Project, teacher_id: int, *, cancel: CancelToken) -> Iterator[Event]:
        self._load()
        yield Log(f"teacher {self.spec} on {self.device}")

    def predict_probs(self, texts: Sequence[str]):
        import torch

        self._load()
        enc = self._tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt").to(self.device)
        with torch.inference_mode(), autocast(self.device):
            logits = self._model(**enc).logits.float()
        probs = torch.softmax(logits, dim=-1)[:, self._columns]
        return (probs / probs.sum(-1, keepdim=True)).cpu().numpy()

    def classifier_module(self) -> TeacherModule:
        """The classifier, its softmax and the project's columns (renormalised) as one module
        from ``(input_ids, attention_mask)`` to :meth:`predict_probs`'s probabilities."""
        import torch

        self._load()
        columns = list(self._columns)

        class ProbabilityClassifier(torch.nn.Module):
            def __init__(self, model: Any) -> None:
                super().__init__()
                self.model = model
                self.register_buffer("columns", torch.tensor(columns, dtype=torch.long))

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
                probs = torch.softmax(logits, dim=-1).index_select(-1, self.columns)
                return probs / probs.sum(-1, keepdim=True)

        return TeacherModule(ProbabilityClassifier(self._model).eval(), self._tokenizer, self.max_length)

    def _timed_probs(self, batch: list[tuple[int, str]]) -> tuple[list[list[float]], float]:
        t0 = time.perf_counter()
        probs = self.predict_probs([t for _, t in batch]).tolist()
        return probs, timed_ms(t0, len(batch))

    def answer(self, items: Sequence[Item], *, cancel: CancelToken) -> Answers:
        self._load()
        batches = token_batches(self._tokenizer, items, max_length=self.max_length, batch_size=self.batch_size,
                                device=self.device)
        for batch, (probs, ms) in run_batches(self._timed_probs, batches, device=self.device, cancel=cancel):
            yield [TeacherOutput(example=i, probs=p, method="logits", latency_ms=ms)
                   for (i, _), p in zip(batch, probs, strict=True)]

    def close(self) -> None:
        self._model = None
