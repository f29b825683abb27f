"""The student registry: each spec name maps to a :class:`StudentInfo` with its builder.

A spec is ``NAME`` or ``NAME:ARGUMENT``::

    bilstm                       one-layer BiLSTM with max-pooling (Tang et al. 2019)
    cnn                          Kim-style CNN (widths 3/4/5, max-over-time), 128-d pieces, 128 filters per width
    cnn-tiny                     the same at half the width (64-d pieces, 64 filters per width): an edge student
    transformer-tiny|mini|small  BERT-style encoder built from a config, trained from scratch
    hf:PATH_OR_ID                a pretrained sequence classifier, head resized to the project's labels
                                 (generation: any pretrained causal LM, ``AutoModelForCausalLM``)
    teacher-layers:K             the local transformer teacher keeping K alternate layers, new head
    gpt-tiny|mini|small          generation: a GPT-2-style causal LM built from a config, from scratch:
                                 tiny 2 layers x 128 hidden (2 heads), mini 4 x 256 (4 heads),
                                 small 6 x 384 (6 heads); feed-forward 4 x hidden, tied embeddings

Each entry says which project tasks it serves (``StudentInfo.tasks``): a classification student
is refused for a generation project and the other way round (:func:`resolve_student` with
``task``), and :func:`students_for` lists a task's students (the student picker does).

:func:`resolve_student` turns a spec into its entry and argument (an unknown spec is one
``ConfigError`` line naming the choices); ``entry.build(argument, n_labels, tokenizer, ...)``
returns a fresh ``torch.nn.Module`` mapping ``(input_ids, attention_mask)`` to logits. Builders
import torch and transformers inside, so the registry itself is cheap to import (the GUI lists
it at start-up). A new kind of student is one :func:`register` call; a generation student's
builder returns a Hugging Face causal language model (``model(input_ids=..., attention_mask=...)
.logits``, ``model.generate``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from kdstudio.core.errors import ConfigError

# (embedding width, filters per width) of the CNN students: cnn-tiny is the edge preset, about 40x
# fewer operations per token than the MiniLM teacher's encoder and about 2.5x fewer than cnn's.
CNN_SIZES = {"": (128, 128), "tiny": (64, 64)}
# (layers, hidden, heads) of the from-scratch transformers; feed-forward is 4 x hidden.
TRANSFORMER_SIZES = {"tiny": (2, 128, 2), "mini": (4, 256, 4), "small": (4, 512, 8)}
# (layers, hidden, heads) of the GPT-2-style generation students; sized for a laptop CPU: gpt-tiny
# trains on E2E in minutes on two cores, gpt-small is a teacher-sized model for comparisons.
GPT_SIZES = {"tiny": (2, 128, 2), "mini": (4, 256, 4), "small": (6, 384, 6)}
#: Positions a generation student holds beyond ``max_length``: room for the longest completion.
MAX_NEW_TOKENS_CAP = 256
TASKS = ("classification", "generation")
DEFAULT_LR = {"scratch": 2e-3, "transformer": 1e-3, "pretrained": 5e-5}
#: A transformer trained from scratch learns slower than a recurrent or convolutional student:
#: transformer-tiny on banking77 was still improving after 10 epochs and levelled off near 20.
DEFAULT_EPOCHS = {"transformer": 20}
#: A small GPT trained from scratch on a few thousand completions: at 3e-3 (warm-up, linear decay)
#: gpt-tiny trained 15 epochs on E2E without diverging, its valid loss still falling slowly at the
#: end; test ROUGE-L 0.69 against the references (tests/bench/bench_generation.py).
DEFAULT_GPT = {"lr": 3e-3, "epochs": 15}

#: ``build(argument, n_labels, tokenizer, *, teacher_path, labels, max_length) -> model``
Builder = Callable[..., Any]


def _no_argument(arg: str | None) -> bool:
    return arg is None


def _path(arg: str | None) -> bool:
    return bool(arg)


def _positive_count(arg: str | None) -> bool:
    return arg is not None and arg.isdigit() and int(arg) > 0


@dataclass(frozen=True)
class StudentInfo:
    """One registered kind of student."""

    name: str  # as a spec writes it, with a placeholder for the argument: "hf:PATH_OR_ID"
    description: str
    pretrained: bool = False  # starts from trained weights: its own tokenizer, a low learning rate
    build: Builder | None = None
    family: str = ""  # what parse_student_spec reports: "transformer" for every transformer-*
    variant: str = ""  # the fixed argument of a preset ("mini" for transformer-mini)
    accepts: Callable[[str | None], bool] = _no_argument  # is this ":ARGUMENT" (None: none) valid?
    lr: float = DEFAULT_LR["scratch"]
    epochs: int = 10
    tasks: tuple[str, ...] = ("classification",)  # the project tasks it serves


STUDENTS: dict[str, StudentInfo] = {}


def register(key: str, info: StudentInfo) -> StudentInfo:
    """Add ``info`` under ``key``, the part of a spec before any ``:``."""
    STUDENTS[key] = info
    return info


def students_for(task: str) -> list[StudentInfo]:
    """The registered students that serve a ``task`` project, in registration order."""
    return [info for info in STUDENTS.values() if task in info.tasks]


def resolve_student(spec: str, task: str | None = None) -> tuple[StudentInfo, str]:
    """``"teacher-layers:3"`` → (its entry, ``"3"``); a preset gets its variant (``"mini"``).
    Raises ``ConfigError`` naming the choices when the spec is unknown or, given ``task``, when
    the student does not serve that kind of project."""
    spec = spec.strip()
    key, sep, arg = spec.partition(":")
    info = STUDENTS.get(key)
    known = info is not None and info.accepts(arg if sep else None)
    if known and (task is None or task in info.tasks):
        return info, arg or info.variant
    names = ", ".join(i.name for i in (students_for(task) if task else STUDENTS.values()))
    if known:
        raise ConfigError(f"student {spec!r} is for {' and '.join(info.tasks)} projects; "
                          f"for a {task} project choose one of: {names}")
    raise ConfigError(f"unknown student {spec!r}; choose one of: {names}")


def parse_student_spec(spec: str) -> tuple[str, str]:
    """``"teacher-layers:3"`` → ``("teacher-layers", "3")``, ``"transformer-mini"`` →
    ``("transformer", "mini")``; raises ``ConfigError`` when unknown."""
    info, arg = resolve_student(spec)
    return info.family, arg


def build_student(
    spec: str,
    n_labels: int,
    tokenizer: Any,
    *,
    teacher_path: str | None = None,
    labels: Sequence[str] | None = None,
    max_length: int = 128,
    task: str = "classification",
) -> Any:
    """A freshly initialised student: for classification a ``torch.nn.Module`` mapping
    ``model(input_ids, attention_mask)`` to logits, for generation a Hugging Face causal LM.

    ``tokenizer`` sets the vocabulary of from-scratch students; ``teacher_path`` is the local
    teacher folder that ``teacher-layers:K`` copies. Seed torch before calling for repeatable weights.
    """
    info, arg = resolve_student(spec, task)
    assert info.build is not None, f"student {info.name} has no builder"
    return info.build(
        arg, n_labels, tokenizer, teacher_path=teacher_path, labels=labels, max_length=max_length, task=task
    )


def default_lr(spec: str) -> float:
    """The learning rate that suits a student when the user gives none."""
    return resolve_student(spec)[0].lr


def default_epochs(spec: str) -> int:
    """The number of epochs that suits a student when the user gives none."""
    return resolve_student(spec)[0].epochs


def uses_own_tokenizer(spec: str) -> bool:
    """True for pretrained students, whose vocabulary comes with their weights."""
    return resolve_student(spec)[0].pretrained


# -- builders (heavy imports inside) -----------------------------------------------------------
def _build_small(arch: str, arg: str, n_labels: int, tokenizer: Any, **_: Any) -> Any:
    from kdstudio.core.students.encoders import ARCHS
    from kdstudio.core.students.tokenizer import pad_id

    if arch == "cnn":
        embed, filters = CNN_SIZES[arg or ""]
        return ARCHS[arch](len(tokenizer), n_labels, pad_id=pad_id(tokenizer), embed_dim=embed, filters=filters)
    return ARCHS[arch](len(tokenizer), n_labels, pad_id=pad_id(tokenizer))


def _build_transformer(
    arg: str, n_labels: int, tokenizer: Any, *, labels: Sequence[str] | None, max_length: int, **_: Any
) -> Any:
    from transformers import BertConfig, BertForSequenceClassification

    from kdstudio.core.students.encoders import HFStudent
    from kdstudio.core.students.pretrained import label_maps
    from kdstudio.core.students.tokenizer import pad_id

    layers, hidden, heads = TRANSFORMER_SIZES[arg]
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        max_position_embeddings=max(512, max_length),
        pad_token_id=pad_id(tokenizer),
        num_labels=n_labels,
        **label_maps(labels, n_labels),
    )
    return HFStudent(BertForSequenceClassification(config))


def _build_gpt(arg: str, n_labels: int, tokenizer: Any, *, max_length: int, **_: Any) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    from kdstudio.core.students.tokenizer import pad_id

    layers, hidden, heads = GPT_SIZES[arg]
    eos = getattr(tokenizer, "eos_token_id", None)
    eos = pad_id(tokenizer) if eos is None else eos
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=max_length + MAX_NEW_TOKENS_CAP, n_embd=hidden,
        n_layer=layers, n_head=heads, bos_token_id=eos, eos_token_id=eos, pad_token_id=pad_id(tokenizer),
    )
    return GPT2LMHeadModel(config)


def _build_pretrained(
    arg: str, n_labels: int, tokenizer: Any, *, labels: Sequence[str] | None, task: str = "classification",
    **_: Any,
) -> Any:
    from kdstudio.core.students.encoders import HFStudent
    from kdstudio.core.students.pretrained import label_maps, load_pretrained_causal_lm, load_pretrained_classifier

    if task == "generation":
        return load_pretrained_causal_lm(arg)
    return HFStudent(load_pretrained_classifier(arg, n_labels, label_maps(labels, n_labels)))


def _build_teacher_layers(
    arg: str,
    n_labels: int,
    tokenizer: Any,
    *,
    teacher_path: str | None,
    labels: Sequence[str] | None,
    **_: Any,
) -> Any:
    from kdstudio.core.students.encoders import HFStudent
    from kdstudio.core.students.pretrained import (
        keep_alternate_layers,
        label_maps,
        load_pretrained_classifier,
    )

    if not teacher_path:
        raise ConfigError(
            "teacher-layers:K needs a local transformer teacher (hf:PATH or embed:PATH)"
        )
    model = load_pretrained_classifier(teacher_path, n_labels, label_maps(labels, n_labels))
    keep_alternate_layers(model, int(arg))
    return HFStudent(model)


register("bilstm", StudentInfo(
    "bilstm", "one-layer BiLSTM with max-pooling (Tang et al. 2019), word pieces",
    build=partial(_build_small, "bilstm"), family="bilstm",
))
register("cnn", StudentInfo(
    "cnn", "Kim-style CNN, filter widths 3/4/5, max-over-time pooling, word pieces",
    build=partial(_build_small, "cnn"), family="cnn",
))
register("cnn-tiny", StudentInfo(
    "cnn-tiny", "the Kim-style CNN at half the width (64-d pieces, 64 filters per width): for phones and browsers",
    build=partial(_build_small, "cnn"), family="cnn", variant="tiny",
))
for _size, (_layers, _hidden, _) in TRANSFORMER_SIZES.items():
    register(f"transformer-{_size}", StudentInfo(
        f"transformer-{_size}",
        f"BERT-style encoder, {_layers} layers x {_hidden} hidden, from scratch",
        build=_build_transformer, family="transformer", variant=_size,
        lr=DEFAULT_LR["transformer"], epochs=DEFAULT_EPOCHS["transformer"],
    ))
register("hf", StudentInfo(
    "hf:PATH_OR_ID", "a pretrained sequence classifier (DistilBERT, MiniLM...), new head; "
    "for generation a pretrained causal LM (GPT-2, Qwen...)", True,
    build=_build_pretrained, family="hf", accepts=_path, lr=DEFAULT_LR["pretrained"], tasks=TASKS,
))
register("teacher-layers", StudentInfo(
    "teacher-layers:K", "the local transformer teacher keeping K alternate layers", True,
    build=_build_teacher_layers, family="teacher-layers", accepts=_positive_count,
    lr=DEFAULT_LR["pretrained"],
))

for _size, (_layers, _hidden, _heads) in GPT_SIZES.items():
    register(f"gpt-{_size}", StudentInfo(
        f"gpt-{_size}",
        f"GPT-2-style causal LM, {_layers} layers x {_hidden} hidden, from scratch (generation)",
        build=_build_gpt, family="gpt", variant=_size, lr=DEFAULT_GPT["lr"], epochs=DEFAULT_GPT["epochs"],
        tasks=("generation",),
    ))

__all__ = [
    "CNN_SIZES",
    "GPT_SIZES",
    "MAX_NEW_TOKENS_CAP",
    "STUDENTS",
    "StudentInfo",
    "build_student",
    "default_epochs",
    "default_lr",
    "parse_student_spec",
    "register",
    "resolve_student",
    "students_for",
    "uses_own_tokenizer",
]
