"""What the live training plots draw, without Qt: which plot a metric belongs to, growable
arrays per (run, metric), and the debiased moving average that smooths them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

X_AXES = {"step": "Step", "epoch": "Epoch", "time": "Time (s)"}

#: plot key → (title, y label, metric names in legend order)
PLOTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "loss": ("Loss", "loss", ("train/loss", "train/kd", "train/ce")),
    "valid": ("Validation", "fraction", ("valid/accuracy", "valid/agreement", "valid/perplexity")),
    "lr": ("Learning rate", "lr", ("train/lr",)),
    "other": ("Validation loss and other metrics", "value",
              ("valid/loss", "valid/kd", "valid/ce", "valid/kl", "valid/token_kd", "valid/token_accuracy")),
}
SHORT_NAMES = {
    "train/loss": "total", "train/kd": "KD", "train/ce": "CE", "valid/loss": "valid loss", "valid/kd": "valid KD",
    "valid/ce": "valid CE", "valid/kl": "KL to the teacher",
    "valid/accuracy": "accuracy", "valid/agreement": "agreement with teacher", "train/lr": "learning rate",
    "valid/perplexity": "perplexity of the valid completions", "valid/token_kd": "valid token KD",
    "valid/token_accuracy": "next-token accuracy",
}
#: a generation run's plots: the same places, other titles (its validation is a perplexity, not a fraction)
GENERATION_TITLES: dict[str, tuple[str, str]] = {
    "loss": ("Training loss", "loss"),
    "valid": ("Validation perplexity", "perplexity"),
    "other": ("Validation loss and next-token accuracy", "value"),
}


def plot_title(key: str, task: str = "classification") -> tuple[str, str]:
    """(title, y label) of plot ``key`` for a project of ``task``."""
    if task == "generation" and key in GENERATION_TITLES:
        return GENERATION_TITLES[key]
    return PLOTS[key][0], PLOTS[key][1]


def smoothed(metric: str) -> bool:
    """Whether the smoothing slider bends ``metric``: the noisy per-step training values only.
    Validation points are few and exact, and the learning rate is a schedule, not a measurement
    (smoothing would lower its peak)."""
    return not metric.startswith("valid/") and plot_for(metric) != "lr"


def plot_for(metric: str) -> str:
    """Which plot a metric name belongs to."""
    for key, (_, _, names) in PLOTS.items():
        if metric in names:
            return key
    if metric.startswith("valid/"):
        fraction = any(word in metric for word in ("accuracy", "agreement", "f1", "precision", "recall"))
        return "valid" if fraction else "other"
    if metric.endswith("loss") or metric.startswith("train/k") or metric.startswith("train/c"):
        return "loss"
    if metric.endswith("/lr"):
        return "lr"
    return "other"


def ema(values: np.ndarray, weight: float, state: tuple[float, int] = (0.0, 0)) -> tuple[np.ndarray, tuple[float, int]]:
    """Debiased exponential moving average of ``values`` (as TensorBoard and W&B draw it).

    ``b_t = w·b_{t-1} + (1-w)·x_t`` and the curve is ``b_t / (1 - w^(t+1))``, so early points
    are not pulled towards zero. Vectorised in chunks; ``state`` = (last biased value, count)
    continues a previous call, so appending points costs only the new ones.
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    if weight <= 0.0 or len(values) == 0:
        out[:] = values
        return out, (float(values[-1]) if len(values) else state[0], state[1] + len(values))
    weight = min(weight, 0.9999)
    biased, count = state
    chunk = max(1, min(1024, int(15.0 / -math.log10(weight))))
    for start in range(0, len(values), chunk):
        x = values[start : start + chunk]
        k = np.arange(len(x), dtype=np.float64)
        up = weight ** (-k)
        down = weight**k
        acc = down * (np.cumsum(x * up) * (1.0 - weight)) + biased * weight ** (k + 1)
        steps = count + start + k + 1
        out[start : start + len(x)] = acc / (1.0 - weight**steps)
        biased = float(acc[-1])
    return out, (biased, count + len(values))


class Series:
    """Growable arrays of (step, epoch, wall_s, value) for one metric of one run."""

    def __init__(self, capacity: int = 1024) -> None:
        self.data = np.empty((capacity, 4), dtype=np.float64)
        self.n = 0
        self.smoothed = np.empty(capacity, dtype=np.float64)
        self.smoothed_n = 0
        self.smooth_state: tuple[float, int] = (0.0, 0)
        self.smooth_weight = -1.0

    def append(self, step: float, epoch: float, wall_s: float, value: float) -> None:
        if self.n == len(self.data):
            self._grow(self.n * 2)
        self.data[self.n] = (step, epoch, wall_s, value)
        self.n += 1

    def extend(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
        need = self.n + len(rows)
        if need > len(self.data):
            self._grow(max(need, self.n * 2))
        self.data[self.n : need] = rows
        self.n = need

    def _grow(self, capacity: int) -> None:
        data = np.empty((capacity, 4), dtype=np.float64)
        data[: self.n] = self.data[: self.n]
        self.data = data
        smoothed = np.empty(capacity, dtype=np.float64)
        smoothed[: self.smoothed_n] = self.smoothed[: self.smoothed_n]
        self.smoothed = smoothed

    def x(self, axis: str) -> np.ndarray:
        column = {"step": 0, "epoch": 1, "time": 2}[axis]
        return self.data[: self.n, column]

    @property
    def y(self) -> np.ndarray:
        return self.data[: self.n, 3]

    def smooth(self, weight: float) -> np.ndarray:
        """The smoothed values, computing only points added since the last call."""
        if weight != self.smooth_weight:
            self.smooth_weight, self.smoothed_n, self.smooth_state = weight, 0, (0.0, 0)
        if self.smoothed_n < self.n:
            tail, self.smooth_state = ema(self.y[self.smoothed_n :], weight, self.smooth_state)
            self.smoothed[self.smoothed_n : self.n] = tail
            self.smoothed_n = self.n
        return self.smoothed[: self.n]


@dataclass
class RunSeries:
    """All metrics of one run, as plotted."""

    run: int
    label: str
    series: dict[str, Series] = field(default_factory=dict)
    visible: bool = True

    def get(self, name: str) -> Series:
        if name not in self.series:
            self.series[name] = Series()
        return self.series[name]


def run_score_text(summary: dict) -> str:
    """The score a run list shows for a run's stored summary (``TrainResult.to_json()``): the
    validation accuracy of the best checkpoint, the one the run keeps and evaluates, labelled so.
    The checkpoint is chosen by the run's checkpoint metric (the valid loss for a distillation
    run), so this can be below the highest point of the validation accuracy curve. Empty when the
    run has no accuracy (no gold labels on the valid split, or not finished)."""
    accuracy = summary.get("valid_accuracy")
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)):
        return ""
    return f" · best valid acc {accuracy:.3f}"  # "best": of the best checkpoint; short, for a narrow list
