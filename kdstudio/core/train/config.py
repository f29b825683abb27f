"""The settings of one training run, as a typed dataclass.

CLI flags and wizard fields are built from these fields (``batch_size`` → ``--batch-size``; a
bool field is a switch), and the dict form is stored with every run and checkpoint. This module
imports nothing heavy: the GUI imports it at start-up. Field types are real objects (no
postponed annotations), so ``dataclasses.fields(TrainConfig)[i].type`` is ``int``, ``float | None``...
"""

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from kdstudio.core.errors import ConfigError

SCHEDULES = ("linear", "cosine")
EMBED_INITS = ("teacher", "random")
CHECKPOINT_METRICS = ("auto", "loss", "accuracy", "agreement")
DEVICES = ("auto", "cpu", "cuda", "mps")
KD_MODES = ("sequence", "token")
VOCABS = ("pruned", "full")


@dataclass
class TrainConfig:
    """How to train one student. ``None`` means "pick a sensible value for this student"."""

    student: str = field(
        default="bilstm",
        metadata={
            "help": "student: bilstm, cnn, transformer-tiny|mini|small, hf:PATH_OR_ID or teacher-layers:K; "
            "generation: gpt-tiny|mini|small or hf:PATH_OR_ID (a causal LM)"
        },
    )
    teacher: int | None = field(
        default=None,
        metadata={"help": "teacher id in the project (default: the teacher with the most outputs)"},
    )
    temperature: float = field(
        default=3.0,
        metadata={
            "help": "softmax temperature T (> 0) applied to teacher and student in the KD term"
        },
    )
    alpha: float = field(
        default=0.9,
        metadata={
            "help": "weight of the soft KD term; 1 - alpha goes to cross-entropy on gold labels"
        },
    )
    epochs: int | None = field(
        default=None,
        metadata={
            "help": "passes over the training data (default: 20 for transformer-*, 10 for the others)"
        },
    )
    batch_size: int = field(default=32, metadata={"help": "examples per micro-batch"})
    lr: float | None = field(
        default=None,
        metadata={
            "help": "peak learning rate (default: 2e-3 for bilstm/cnn, 1e-3 for transformer-*, 5e-5 for pretrained)"
        },
    )
    hard_labels: bool = field(
        default=False,
        metadata={"help": "train on gold labels only (the baseline a KD run is compared with); generation: on "
                  "the references, no teacher"},
    )
    uncalibrated: bool = field(
        default=False,
        metadata={"help": "train on the teacher's distributions as stated, not through its calibration"},
    )
    seed: int = field(default=0, metadata={"help": "random seed (runs on CPU are deterministic)"})
    max_length: int = field(
        default=128, metadata={"help": "longest input in tokens; longer ones are cut"}
    )
    warmup_ratio: float = field(
        default=0.06, metadata={"help": "fraction of steps spent warming up the lr"}
    )
    schedule: str = field(
        default="linear", metadata={"help": "lr decay after warm-up: linear or cosine"}
    )
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    grad_clip: float = field(
        default=1.0, metadata={"help": "clip the gradient norm to this (0 = off)"}
    )
    grad_accum: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    eval_every: int = field(
        default=0, metadata={"help": "evaluate on valid every N steps (0 = each epoch)"}
    )
    patience: int = field(
        default=3,
        metadata={
            "help": "stop after this many evaluations without improvement (0 = never stop early)"
        },
    )
    checkpoint_metric: str = field(
        default="auto",
        metadata={
            "help": "valid metric that picks the best checkpoint and drives early stopping: loss, "
            "accuracy (gold), agreement (teacher) or auto (loss for KD runs, accuracy with --hard-labels)"
        },
    )
    device: str = field(
        default="auto", metadata={"help": "auto (CUDA > MPS > CPU), cpu, cuda or mps"}
    )
    num_threads: int = field(
        default=0,
        metadata={
            "help": "CPU threads for torch (0 = all cores but one, leaving the GUI responsive)"
        },
    )
    hidden_mse: float = field(
        default=0.0,
        metadata={
            "help": "weight of a hidden-state MSE term (local transformer teacher and student; 0 = off)"
        },
    )
    embed_init: str = field(
        default="teacher",
        metadata={
            "help": "teacher: a from-scratch student that shares the teacher's tokenizer starts from the "
            "teacher's word-piece embeddings (PCA to its width); random: from scratch"
        },
    )
    vocab: str = field(
        default="pruned",
        metadata={
            "help": "pruned: a student that shares the teacher's WordPiece tokenizer keeps only the word pieces "
            "the project's texts use (every split), so its embedding table shrinks; full: all of the teacher's",
            "choices": VOCABS,
        },
    )
    vocab_size: int = field(
        default=8000,
        metadata={
            "help": "size of the vocabulary trained when the teacher has no tokenizer (a WordPiece; "
            "generation: a byte-level BPE, smaller when the texts run out of merges)"
        },
    )
    kd: str = field(
        default="sequence",
        metadata={
            "help": "generation: sequence (learn the teacher's completions, black-box) or token (also match "
            "a local lm: teacher's next-token distributions with --temperature and --alpha, white-box)"
        },
    )
    max_new_tokens: int | None = field(
        default=None,
        metadata={
            "help": "generation: longest completion the student writes (default: 1.25 x the 99th percentile "
            "of the training completions in tokens, at most 256)"
        },
    )
    log_every: int = field(
        default=0, metadata={"help": "log training metrics every N steps (0 = auto)"}
    )
    name: str | None = field(default=None, metadata={"help": "a name for the run"})

    def validate(self) -> "TrainConfig":
        """Raise ``ConfigError`` (one clear line) for a setting that cannot work; return self."""
        problems = [
            (not self.student.strip(), "--student is empty"),
            (self.temperature <= 0, f"--temperature must be > 0 (got {self.temperature})"),
            (not 0 <= self.alpha <= 1, f"--alpha must be between 0 and 1 (got {self.alpha})"),
            (
                self.epochs is not None and self.epochs < 1,
                f"--epochs must be at least 1 (got {self.epochs})",
            ),
            (self.batch_size < 1, f"--batch-size must be at least 1 (got {self.batch_size})"),
            (self.lr is not None and self.lr <= 0, f"--lr must be > 0 (got {self.lr})"),
            (self.max_length < 8, f"--max-length must be at least 8 (got {self.max_length})"),
            (
                not 0 <= self.warmup_ratio < 1,
                f"--warmup-ratio must be in [0, 1) (got {self.warmup_ratio})",
            ),
            (
                self.schedule not in SCHEDULES,
                f"--schedule must be one of {', '.join(SCHEDULES)} (got {self.schedule!r})",
            ),
            (self.weight_decay < 0, f"--weight-decay must be >= 0 (got {self.weight_decay})"),
            (self.grad_clip < 0, f"--grad-clip must be >= 0 (got {self.grad_clip})"),
            (self.grad_accum < 1, f"--grad-accum must be at least 1 (got {self.grad_accum})"),
            (self.eval_every < 0, f"--eval-every must be >= 0 (got {self.eval_every})"),
            (self.patience < 0, f"--patience must be >= 0 (got {self.patience})"),
            (
                self.checkpoint_metric not in CHECKPOINT_METRICS,
                f"--checkpoint-metric must be one of {', '.join(CHECKPOINT_METRICS)} "
                f"(got {self.checkpoint_metric!r})",
            ),
            (
                self.device not in DEVICES,
                f"--device must be one of {', '.join(DEVICES)} (got {self.device!r})",
            ),
            (self.num_threads < 0, f"--num-threads must be >= 0 (got {self.num_threads})"),
            (self.hidden_mse < 0, f"--hidden-mse must be >= 0 (got {self.hidden_mse})"),
            (
                self.embed_init not in EMBED_INITS,
                f"--embed-init must be one of {', '.join(EMBED_INITS)} (got {self.embed_init!r})",
            ),
            (
                self.vocab not in VOCABS,
                f"--vocab must be one of {', '.join(VOCABS)} (got {self.vocab!r})",
            ),
            (self.vocab_size < 100, f"--vocab-size must be at least 100 (got {self.vocab_size})"),
            (self.log_every < 0, f"--log-every must be >= 0 (got {self.log_every})"),
            (self.kd not in KD_MODES, f"--kd must be one of {', '.join(KD_MODES)} (got {self.kd!r})"),
            (
                self.max_new_tokens is not None and self.max_new_tokens < 1,
                f"--max-new-tokens must be at least 1 (got {self.max_new_tokens})",
            ),
            (
                self.hard_labels and self.kd == "token",
                "--kd token needs a teacher; it cannot go with --hard-labels",
            ),
            (
                self.hard_labels and self.hidden_mse > 0,
                "--hidden-mse needs a teacher; it cannot go with --hard-labels",
            ),
        ]
        for bad, message in problems:
            if bad:
                raise ConfigError(message)
        from kdstudio.core.students import parse_student_spec

        parse_student_spec(self.student)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Build from a stored dict, ignoring keys this version does not know."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
