"""Tiny Hugging Face models and a toy classification project, built from configs (never downloaded).

``save_tiny_bert(folder)`` writes a 2-layer, 32-hidden BERT and a WordPiece tokenizer over a
small fixed vocabulary; ``build_toy_project(path)`` makes a 3-label project whose texts use that
vocabulary, with a fake teacher's soft labels stored for train, unlabeled, valid and test;
``make_compare_project(folder)`` adds a finished run whose test predictions disagree with the
teacher on every fourth example (what the comparison viewer and ``kdstudio compare`` read);
``make_long_label_compare_project(path)`` is the same with banking77's 77 long label names (the
sample's), for layouts that must hold names like ``card_payment_wrong_exchange_rate``.
"""

from __future__ import annotations

import hashlib
import math
import random
from pathlib import Path
from typing import Any

LABELS = ["sports", "weather", "money"]
KEYWORDS = {
    "sports": ["team", "match", "goal", "coach", "score", "league", "player", "win"],
    "weather": ["rain", "sun", "storm", "cloud", "wind", "snow", "cold", "warm"],
    "money": ["bank", "loan", "cash", "card", "price", "pay", "account", "fee"],
}
FILLER = ["the", "a", "today", "was", "very", "and", "we", "saw", "big", "new", "some", "again"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = SPECIALS + FILLER + [w for words in KEYWORDS.values() for w in words] + ["##s", "##ing"]


def tiny_tokenizer() -> Any:
    """A BERT-style fast tokenizer over ``VOCAB`` (lower-cased, [CLS] … [SEP])."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", VOCAB.index("[CLS]")), ("[SEP]", VOCAB.index("[SEP]"))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )


def save_tiny_bert(
    folder: str | Path,
    *,
    n_labels: int | None = None,
    layers: int = 2,
    hidden: int = 32,
    seed: int = 0,
) -> Path:
    """Save a tiny BERT (a sequence classifier when ``n_labels`` is given, else a bare encoder
    like a sentence-embedding model) with its tokenizer to ``folder``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
        pad_token_id=0,
    )
    if n_labels:
        config.num_labels = n_labels
        model = BertForSequenceClassification(config)
    else:
        model = BertModel(config)
    folder = Path(folder)
    model.save_pretrained(folder)
    tiny_tokenizer().save_pretrained(str(folder))
    return folder


def toy_text(label: str, rng: random.Random) -> str:
    words = rng.sample(KEYWORDS[label], 2) + rng.sample(FILLER, rng.randint(1, 6))
    rng.shuffle(words)
    return " ".join(words)


def fake_teacher_probs(
    gold: int, rng: random.Random, *, n_labels: int = 3, accuracy: float = 0.9
) -> list[float]:
    """A soft label that puts most mass on ``gold`` (or, 1 time in 10, on a wrong label)."""
    top = gold if rng.random() < accuracy else (gold + 1) % n_labels
    probs = [rng.uniform(0.02, 0.15) for _ in range(n_labels)]
    probs[top] = rng.uniform(0.6, 0.9)
    total = sum(probs)
    return [p / total for p in probs]


def build_toy_project(
    path: str | Path,
    *,
    sizes: dict[str, int] | None = None,
    seed: int = 0,
    teacher_spec: str = "fake:teacher",
    with_teacher: bool = True,
) -> tuple[Any, int | None]:
    """A 3-label project with ``sizes`` examples per split (train rows labelled, unlabeled rows
    not) and a teacher whose soft labels cover every example. Returns ``(project, teacher_id)``."""
    from kdstudio.core.store import Project, TeacherOutput

    sizes = sizes or {"train": 36, "unlabeled": 12, "valid": 12, "test": 12}
    rng = random.Random(seed)
    project = Project.create(path, "classification", labels=LABELS)
    rows = []
    for split, n in sizes.items():
        for i in range(n):
            gold = i % len(LABELS)
            text = f"{toy_text(LABELS[gold], rng)} {split} {i}"
            digest = hashlib.sha256(text.encode()).hexdigest()
            rows.append(
                (text, None if split == "unlabeled" else gold, None, split, "toy", i + 1, digest)
            )
    with project.transaction():
        project.insert_examples(rows)
    if not with_teacher:
        return project, None
    teacher_id = project.upsert_teacher(
        teacher_spec,
        teacher_spec.partition(":")[0],
        teacher_spec.partition(":")[2],
        hashlib.sha256(teacher_spec.encode()).hexdigest()[:16],
        {},
    )
    outputs = []
    for ex_id, text, gold in project.examples():
        true = (
            gold
            if gold is not None
            else next(
                i for i, lab in enumerate(LABELS) if any(w in text.split() for w in KEYWORDS[lab])
            )
        )
        outputs.append(TeacherOutput(example=ex_id, probs=fake_teacher_probs(true, rng)))
    project.save_outputs(teacher_id, outputs)
    return project, teacher_id


# -- a stored run, for the comparison ------------------------------------------------------------


def stats(student: list[float], teacher: list[float]) -> dict[str, float]:
    """What a prediction row stores beside the probabilities: confidence, margin, entropy, KL."""
    top = sorted(student, reverse=True)
    return {
        "confidence": top[0],
        "margin": top[0] - top[1],
        "entropy": -sum(p * math.log(p) for p in student if p > 0),
        "kl": sum(
            t * (math.log(t) - math.log(s)) for t, s in zip(teacher, student, strict=True) if t > 0
        ),
    }


def add_stored_run(path: Path, *, seed: int = 1, student: str = "cnn", flip_every: int = 4) -> int:
    """A finished run whose test predictions follow the teacher, except every ``flip_every``-th
    example, where the student picks the next label (a disagreement)."""
    from kdstudio.core.store import Project

    rng = random.Random(seed)
    with Project(path) as project:
        teacher_id = project.default_teacher()
        outputs = {o["id"]: o["probs"] for o in project.teacher_outputs(teacher_id, ["test"])}
        run = project.create_run(student, teacher_id, {"student": student}, name=f"{student} KD")
        rows = []
        for n, (ex, probs) in enumerate(sorted(outputs.items())):
            top = max(range(len(probs)), key=probs.__getitem__)
            pick = (top + 1) % len(probs) if n % flip_every == 0 else top
            s = [rng.uniform(0.05, 0.2) for _ in probs]
            s[pick] = rng.uniform(0.5, 0.9)
            s = [v / sum(s) for v in s]
            rows.append(
                {"example": ex, "probs": s, "label": pick, "latency_ms": 1.0, **stats(s, probs)}
            )
        project.save_predictions(run, rows)
        project.update_run(run, status="finished")
    return run


def make_compare_project(folder: Path, n_test: int = 40) -> tuple[Path, int]:
    """A toy project with ``n_test`` test rows and a stored run (see ``add_stored_run``): (path, run)."""
    path = folder / "toy.kdproj"
    project, _teacher = build_toy_project(path, sizes={"train": 24, "valid": 6, "test": n_test})
    project.close()
    return path, add_stored_run(path)


def banking77_labels() -> list[str]:
    """The sample's 77 banking77 intents (long names such as ``card_payment_wrong_exchange_rate``)."""
    import json

    from kdstudio.core.paths import resources_dir

    return json.loads((resources_dir() / "sample" / "categories.json").read_text(encoding="utf-8"))


def make_long_label_compare_project(
    path: str | Path, *, labels: list[str] | None = None, n_test: int = 154, seed: int = 0
) -> tuple[Path, int]:
    """A project at ``path`` with many long label names (default: banking77's 77), a teacher's
    soft labels for a few train and ``n_test`` test rows, and a stored run (``add_stored_run``:
    the student disagrees with the teacher on every fourth test row): (path, run)."""
    from kdstudio.core.store import Project, TeacherOutput

    labels = labels or banking77_labels()
    rng = random.Random(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    project = Project.create(path, "classification", labels=labels)
    rows = []
    for split, n in (("train", 2 * len(labels)), ("test", n_test)):
        for i in range(n):
            gold = i % len(labels)
            words = labels[gold].lower().split("_") + rng.sample(FILLER, rng.randint(2, 8))
            rng.shuffle(words)
            text = f"{' '.join(words)} {split} {i}"
            digest = hashlib.sha256(text.encode()).hexdigest()
            rows.append((text, gold, None, split, "toy", i + 1, digest))
    with project.transaction():
        project.insert_examples(rows)
    teacher_id = project.upsert_teacher("fake:teacher", "fake", "teacher", "0" * 16, {})
    outputs = [
        TeacherOutput(example=ex, probs=fake_teacher_probs(gold, rng, n_labels=len(labels)))
        for ex, _text, gold in project.examples()
    ]
    project.save_outputs(teacher_id, outputs)
    project.close()
    return path, add_stored_run(path)


GEN_TEXTS = [f"name[{n}], food[{f}]\n{n} serves {f} food." for n in ("Alimentum", "Cotto", "Zizzi", "Aromi")
             for f in ("Chinese", "English", "French", "Italian")]


def tiny_bpe_tokenizer(texts: list[str] | None = None, vocab_size: int = 300) -> Any:
    """A byte-level BPE (GPT-2 style) trained on ``texts``, with ``<|endoftext|>`` as end-of-text
    and padding token, wrapped as a fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts or GEN_TEXTS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>", unk_token="<|endoftext|>", model_max_length=128)


def save_tiny_causal_lm(folder: str | Path, *, texts: list[str] | None = None, layers: int = 2, hidden: int = 32,
                        seed: int = 0) -> Path:
    """Save a tiny GPT-2 (random weights) with :func:`tiny_bpe_tokenizer` to ``folder``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    tok = tiny_bpe_tokenizer(texts)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=hidden, n_layer=layers,
                                       n_head=2, bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                                       pad_token_id=tok.eos_token_id))
    folder = Path(folder)
    model.save_pretrained(folder)
    tok.save_pretrained(str(folder))
    return folder
