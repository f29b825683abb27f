"""The settings of one harvest, as a typed dataclass.

The CLI builds its ``kdstudio harvest`` flags from these fields (``budget_usd`` →
``--budget-usd``; a bool field is a switch) and the harvest panel fills one from its widgets; the
harvest reads nothing else. This module imports nothing heavy. Field types are real objects (no
postponed annotations), as in ``TrainConfig``.
"""

from dataclasses import dataclass, field
from typing import Any

from kdstudio.core.errors import ConfigError
from kdstudio.core.store import SPLITS

EMBED_MODES = ("probe", "zero-shot")


@dataclass
class HarvestConfig:
    """What to ask which teacher. ``None`` means "the teacher's default"."""

    teacher: str = field(
        default="",
        metadata={"help": "embed:minilm | embed:PATH | hf:PATH_OR_ID | claude:MODEL_ID | lm:PATH_OR_ID | "
                          "recorded:NAME"},
    )
    splits: tuple[str, ...] | None = field(
        default=None, metadata={"help": "splits to ask about (default: train,valid,test,unlabeled)"}
    )
    limit: int | None = field(default=None, metadata={"help": "ask about at most N examples this time"})
    concurrency: int = field(default=8, metadata={"help": "parallel API requests"})
    batch_api: bool = field(
        default=False, metadata={"help": "use the Message Batches API (half price, slower)"}
    )
    budget_usd: float | None = field(
        default=None, metadata={"help": "stop before spending would exceed this"}
    )
    dry_run: bool = field(
        default=False, metadata={"help": "estimate tokens and cost without asking the teacher"}
    )
    retry_failed: bool = field(
        default=False, metadata={"help": "ask again about examples that failed before"}
    )
    mode: str | None = field(
        default=None,
        metadata={
            "help": "embedding teachers: fit a probe on gold train labels, or zero-shot "
            "(default: probe when gold labels exist)",
            "choices": EMBED_MODES,
        },
    )
    probe_rows: int | None = field(
        default=None,
        metadata={"help": "embedding probe: fit on at most N gold train rows (default: all)"},
    )
    label_map: dict[str, str] = field(
        default_factory=dict,
        metadata={"help": "hf: teachers: MODEL_LABEL=PROJECT_LABEL pairs when the names differ"},
    )
    k_samples: int = field(
        default=0, metadata={"help": "Claude: ask the most uncertain answers k more times"}
    )
    uncertain_fraction: float | None = field(
        default=None,
        metadata={"help": "Claude k-sample mode: share of answers asked again (default 0.15)"},
    )
    max_tokens: int | None = field(
        default=None,
        metadata={"help": "output token limit per answer (Claude: default the longest valid answer, "
                          "from the schema, 1024 for generation; lm: max_new_tokens, default 128)"},
    )
    top_k: int | None = field(
        default=None,
        metadata={"help": "Claude: each answer names the K most likely labels (default: every label "
                          "up to 10 labels, else 5; 0 = every label)"},
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "allow custom model code from the model folder"}
    )
    options: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "further teacher options, passed on as they are (batch_size, device, "
            "max_new_tokens, api_key, base_url...)"
        },
    )

    def validate(self) -> "HarvestConfig":
        """Raise ``ConfigError`` (one clear line) for a setting that cannot work; return self."""
        bad = [s for s in self.splits or () if s not in SPLITS]
        if bad:
            raise ConfigError(f"unknown split {bad[0]!r}; choose from {', '.join(SPLITS)}")
        if self.concurrency < 1:
            raise ConfigError("--concurrency must be at least 1")
        if self.budget_usd is not None and self.budget_usd < 0:
            raise ConfigError("--budget-usd must be >= 0")
        if self.top_k is not None and self.top_k < 0:
            raise ConfigError("--top-k must be 0 (every label) or a number of labels")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError("--max-tokens must be at least 1")
        return self

    def teacher_options(self) -> dict[str, Any]:
        """The options the teacher is built with: ``options``, the teacher settings given here,
        and the harvest's own (concurrency, budget, batch lane)."""
        given = {
            "mode": self.mode or None,
            "probe_rows": self.probe_rows or None,
            "label_map": dict(self.label_map) or None,
            "k_samples": self.k_samples or None,
            "uncertain_fraction": self.uncertain_fraction,
            "max_tokens": self.max_tokens or None,
            "top_k": self.top_k,
            "retry_failed": self.retry_failed or None,
            "trust_remote_code": self.trust_remote_code or None,
        }
        return {
            **self.options,
            **{k: v for k, v in given.items() if v is not None},
            "concurrency": self.concurrency,
            "budget_usd": self.budget_usd,
            "batch_api": self.batch_api,
        }
