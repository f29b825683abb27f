"""``embed:`` teachers: mean-pooled sentence embeddings turned into label distributions.

Two modes:
- ``probe`` (default when the project has gold train labels of two classes or more): multinomial logistic regression
  on the embeddings of gold-labelled train rows (optionally only ``probe_rows`` of them, the
  few-gold setting), then a temperature fitted on the gold valid rows so the probabilities are
  calibrated. The fitted probe is stored with the teacher, so a resumed harvest answers alike.
- ``zero-shot``: cosine similarity between the text and each label's description (or its name,
  underscores read as spaces), softmax with a temperature.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from kdstudio.core.errors import TeacherError
from kdstudio.core.events import CancelToken, Event, Log, Progress
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

ZERO_SHOT_TEMPERATURE = 0.05


class EmbeddingTeacher(LocalTeacher):
    kind = "embed"

    def __init__(self, model: str, context: TeacherContext) -> None:
        self.model, self.context = model, context
        self.spec = f"embed:{model}"
        opts = context.options
        self.mode = opts.get("mode") or default_mode(context)
        self.probe_rows = opts.get("probe_rows")
        self.seed = int(opts.get("seed", 0))
        self.max_length = int(opts.get("max_length", 128))
        self.batch_size = int(opts.get("batch_size", 64))
        self.device = opts.get("device")
        self._encoder: Any = None
        self._tokenizer: Any = None
        self._probe: dict[str, Any] | None = None
        self._cache: dict[int, Any] = {}
        if self.mode not in ("probe", "zero-shot"):
            raise TeacherError(f"embedding teacher mode must be probe or zero-shot, not {self.mode!r}")
        if context.task != "classification":
            raise TeacherError("embedding teachers answer classification tasks only; use lm: or claude: for generation")

    def settings(self) -> dict[str, Any]:
        s: dict[str, Any] = {"mode": self.mode, "max_length": self.max_length}
        if self.mode == "probe":
            s.update(probe_rows=self.probe_rows, seed=self.seed)
        else:
            s["descriptions"] = self._label_texts()
        return s

    # -- loading and embedding ----------------------------------------------------------------
    def _load(self) -> None:
        if self._encoder is not None:
            return
        from transformers import AutoModel, AutoTokenizer

        source = resolve_model(self.model)
        self.device = pick_device(self.device)
        self._tokenizer = load_pretrained(AutoTokenizer, source)
        self._encoder = load_pretrained(AutoModel, source).to(self.device).eval()

    def parameter_count(self) -> int:
        self._load()
        return sum(p.numel() for p in self._encoder.parameters()) + (
            self._probe["weight"].numel() if self._probe else 0)

    def embed(self, texts: Sequence[str]):
        """Unit-length mean-pooled embeddings of ``texts`` (one batch), as a float tensor on CPU."""
        import torch

        self._load()
        enc = self._tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt").to(self.device)
        with torch.inference_mode(), autocast(self.device):
            hidden = self._encoder(**enc).last_hidden_state.float()
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1).cpu()

    def _embed_batch(self, batch: list[tuple[int, str]]) -> tuple[Any, float]:
        t0 = time.perf_counter()
        vectors = self.embed([t for _, t in batch])
        return vectors, timed_ms(t0, len(batch))

    def _embedded(self, items: Sequence[tuple[int, str]], cancel: CancelToken) -> Iterator[tuple[list, Any, float]]:
        """(batch, vectors, ms per item) for ``items``, in token-sorted batches, two at a time on the CPU."""
        self._load()
        batches = token_batches(self._tokenizer, items, max_length=self.max_length, batch_size=self.batch_size,
                                device=self.device)
        for batch, (vectors, ms) in run_batches(self._embed_batch, batches, device=self.device, cancel=cancel):
            yield batch, vectors, ms

    def _embed_items(self, items: Sequence[tuple[int, str]], cancel: CancelToken, stage: str) -> Iterator[Any]:
        """Embed (id, text) items, caching by id; yields Progress."""
        todo = [it for it in items if it[0] not in self._cache]
        done = len(items) - len(todo)
        for batch, vectors, _ in self._embedded(todo, cancel):
            for (ex_id, _), vec in zip(batch, vectors, strict=True):
                self._cache[ex_id] = vec
            done += len(batch)
            yield Progress(stage, done, len(items))

    # -- probe ----------------------------------------------------------------------------------
    def _label_texts(self) -> list[str]:
        return [self.context.descriptions.get(n) or n.replace("_", " ") for n in self.context.labels]

    def prepare(self, project: Project, teacher_id: int, *, cancel: CancelToken) -> Iterator[Event]:
        self._load()
        yield Log(f"teacher {self.spec} ({self.mode}) on {self.device}")
        if self.mode == "zero-shot":
            self._label_matrix = self.embed(self._label_texts())
            return
        state = project.teacher_state(teacher_id)
        if state:
            self._probe = probe_from_bytes(state)
            if self._probe is not None:
                yield Log("reusing the probe fitted earlier for this teacher")
                return
            yield Log("the probe stored for this teacher is unreadable; fitting it again", level="warning")
        gold = project.examples("train", labelled=True)
        if self.probe_rows:
            gold = random.Random(self.seed).sample(gold, min(int(self.probe_rows), len(gold)))
        if len({label for _, _, label in gold}) < 2:
            raise TeacherError("the probe needs gold labels of at least two classes in train; import labelled "
                               "training data or use --mode zero-shot")
        valid = project.examples("valid", labelled=True)
        yield Log(f"fitting a probe on {len(gold)} gold train rows, calibrating on {len(valid)} valid rows")
        items = [(i, t) for i, t, _ in gold + valid]
        yield from self._embed_items(items, cancel, "embed")
        self._probe = fit_probe(
            [self._cache[i] for i, _, _ in gold], [lab for _, _, lab in gold], len(self.context.labels),
            [self._cache[i] for i, _, _ in valid], [lab for _, _, lab in valid], seed=self.seed,
        )
        project.set_teacher_state(teacher_id, probe_to_bytes(self._probe))
        yield Log(f"probe fitted: valid accuracy {self._probe['valid_accuracy']:.3f}, "
                  f"temperature {float(self._probe['temperature']):.2f}")

    def probabilities(self, vectors):
        import torch

        if self.mode == "zero-shot":
            return torch.softmax(vectors @ self._label_matrix.T / ZERO_SHOT_TEMPERATURE, dim=-1)
        logits = vectors @ self._probe["weight"].T + self._probe["bias"]
        return torch.softmax(logits / self._probe["temperature"], dim=-1)

    def predict_probs(self, texts: Sequence[str]):
        """Probabilities for raw texts (used to time the teacher in evaluation)."""
        return self.probabilities(self.embed(texts)).numpy()

    def classifier_module(self) -> TeacherModule:
        """The encoder, the mean pooling and the probe (or the label embeddings) as one module
        from ``(input_ids, attention_mask)`` to :meth:`predict_probs`'s probabilities."""
        import torch

        self._load()
        if self.mode == "zero-shot":
            weight, bias = self._label_matrix / ZERO_SHOT_TEMPERATURE, torch.zeros(len(self._label_matrix))
            temperature = torch.tensor(1.0)
        else:
            if self._probe is None:
                raise TeacherError("the probe is not fitted yet; prepare the teacher first")
            weight, bias, temperature = self._probe["weight"], self._probe["bias"], self._probe["temperature"]

        class EmbeddingClassifier(torch.nn.Module):
            def __init__(self, encoder: Any) -> None:
                super().__init__()
                self.encoder = encoder
                self.register_buffer("weight", weight.detach().float().clone())
                self.register_buffer("bias", bias.detach().float().clone())
                self.register_buffer("temperature", temperature.detach().float().clone().reshape(()))

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state.float()
                mask = attention_mask.unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                vectors = torch.nn.functional.normalize(pooled, dim=-1)
                return torch.softmax((vectors @ self.weight.T + self.bias) / self.temperature, dim=-1)

        return TeacherModule(EmbeddingClassifier(self._encoder).eval(), self._tokenizer, self.max_length)

    def answer(self, items: Sequence[Item], *, cancel: CancelToken) -> Answers:
        import torch

        cached = [it for it in items if it[0] in self._cache]  # embedded for the probe already
        todo = [it for it in items if it[0] not in self._cache]  # before the loop below empties the cache
        for start in range(0, len(cached), 1024):
            cancel.check()
            chunk = cached[start : start + 1024]
            vectors = torch.stack([self._cache.pop(i) for i, _ in chunk])
            yield self._outputs(chunk, vectors, None)
        for batch, vectors, ms in self._embedded(todo, cancel):
            yield self._outputs(batch, vectors, ms)

    def _outputs(self, batch: Sequence[tuple[int, str]], vectors: Any, ms: float | None) -> list[TeacherOutput]:
        probs = self.probabilities(vectors).tolist()
        return [TeacherOutput(example=i, probs=p, method=self.mode, latency_ms=ms)
                for (i, _), p in zip(batch, probs, strict=True)]

    def close(self) -> None:
        self._encoder = self._tokenizer = None
        self._cache.clear()


def default_mode(context: TeacherContext) -> str:
    """``probe`` when the project has gold train labels of at least two classes (or nobody said),
    else ``zero-shot``."""
    if context.gold_counts is None:
        return "probe"
    return "probe" if sum(1 for n in context.gold_counts.values() if n) >= 2 else "zero-shot"


def probe_to_bytes(probe: dict[str, Any]) -> bytes:
    """The fitted probe as safetensors bytes (tensors only: nothing in a project file is a pickle)."""
    import torch
    from safetensors.torch import save

    return save({k: torch.as_tensor(v, dtype=torch.float32).contiguous() for k, v in probe.items()})


def probe_from_bytes(state: bytes) -> dict[str, Any] | None:
    """The probe :func:`probe_to_bytes` stored (a project from before it holds a ``torch.save`` zip,
    read with ``weights_only=True``: tensors and plain values only, no code); None when unreadable."""
    import torch

    try:
        if bytes(state[:2]) == b"PK":
            probe = torch.load(io.BytesIO(state), weights_only=True)
        else:
            from safetensors.torch import load

            probe = load(bytes(state))
        probe = {k: probe[k] for k in ("weight", "bias", "temperature", "valid_accuracy")}
        probe["valid_accuracy"] = float(probe["valid_accuracy"])
        return probe
    except Exception:  # a damaged or crafted blob: refit rather than trust it
        return None


def fit_probe(train_x: list, train_y: list[int], n_labels: int, valid_x: list, valid_y: list[int], *,
              seed: int = 0, l2: float = 1e-3, steps: int = 200) -> dict[str, Any]:
    """Multinomial logistic regression (L-BFGS, L2) and a softmax temperature fitted on valid."""
    import torch

    torch.manual_seed(seed)
    x = torch.stack(train_x).float()
    y = torch.tensor(train_y)
    # Features are unit vectors: scale them so a modest weight norm can reach confident logits.
    scale = 10.0
    weight = torch.zeros(n_labels, x.shape[1], requires_grad=True)
    bias = torch.zeros(n_labels, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(scale * x @ weight.T + bias, y) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w, b = (scale * weight).detach(), bias.detach()
    temperature = torch.tensor(1.0)
    accuracy = float("nan")
    if valid_x:
        vx, vy = torch.stack(valid_x).float(), torch.tensor(valid_y)
        logits = vx @ w.T + b
        accuracy = float((logits.argmax(-1) == vy).float().mean())
        log_t = torch.zeros(1, requires_grad=True)
        t_opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=100, line_search_fn="strong_wolfe")

        def t_closure():
            t_opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), vy)
            loss.backward()
            return loss

        t_opt.step(t_closure)
        temperature = log_t.detach().exp().squeeze().clamp(0.05, 20.0)
    return {"weight": w, "bias": b, "temperature": temperature, "valid_accuracy": accuracy}
