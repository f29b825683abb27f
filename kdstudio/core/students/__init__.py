"""Students: the architectures a run trains, and how to build, save, load and run them.

Which students exist, and how each spec is built, is the registry in
:mod:`kdstudio.core.students.registry` (``bilstm``, ``cnn``, ``transformer-tiny|mini|small``,
``hf:PATH_OR_ID``, ``teacher-layers:K``); this package re-exports it.

A saved student is a folder::

    student.json               arch, spec, labels, max_length, arch_config, training step...
    model.safetensors          bilstm / cnn weights      (or)   model/  HF save_pretrained folder
    tokenizer/                 HF fast tokenizer (AutoTokenizer.from_pretrained works on it)

A generation student (arch ``causal``) is a Hugging Face causal language model: ``model/`` is its
``save_pretrained`` folder, ``student.json`` has ``task: generation``, the prompt ``template`` and
``max_new_tokens`` it writes with (:mod:`kdstudio.core.generate`). ``model/`` holds a copy of the
tokenizer too, so the folder (or its run folder) serves as a local ``lm:`` teacher as it is.

``load_student(folder)`` gives back ``(model, tokenizer, meta)``; ``predict_probs`` runs a
classifier, :func:`kdstudio.core.generate.generate` a causal student.
``measure_students(names)`` reports the presets' size and speed (:mod:`.measure`).
Every model maps ``(input_ids, attention_mask)`` to logits, so it exports to ONNX as is.
Nothing heavy is imported until a function needs it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kdstudio.core.errors import ConfigError
from kdstudio.core.students.measure import StudentFigure, StudentFigures, measure_students
from kdstudio.core.students.pretrained import quiet_hf
from kdstudio.core.students.registry import (
    STUDENTS,
    StudentInfo,
    build_student,
    default_epochs,
    default_lr,
    parse_student_spec,
    resolve_student,
    students_for,
    uses_own_tokenizer,
)

META_FILE = "student.json"
CAUSAL = "causal"  #: the arch of a generation student: a Hugging Face causal LM


def input_embeddings(model: Any) -> Any:
    """The student's word-piece embedding table (an ``nn.Embedding``)."""
    model = getattr(model, "module", model)
    return model.model.get_input_embeddings() if model.arch == "hf" else model.embed


def init_embeddings_from_teacher(model: Any, source: str) -> str:
    """Start a from-scratch student's word-piece embeddings from the teacher's.

    The student shares the teacher's tokenizer, so row *i* of both tables is the same word
    piece (a pruned student starts from the full table, then :func:`keep_embedding_rows` cuts it).
    The teacher's table is centred and projected onto its leading principal directions (as many
    as the student's width; a wider student keeps its own initial values in the extra columns),
    then scaled to the spread of the student's own initialisation so learning rates and schedules
    behave as from scratch. Pretrained knowledge of which pieces are alike then reaches words
    that the few labelled examples never show (Tang et al. 2019 started their BiLSTM from
    word2vec vectors for the same reason). Returns a line for the run's log.
    """
    import torch
    from transformers import AutoModel

    try:
        with quiet_hf():
            teacher = AutoModel.from_pretrained(source, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the teacher's embeddings from {source!r}: "
                          f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None
    table = teacher.get_input_embeddings().weight.detach().float()
    extras = {name: w.detach().float() for name, w in _position_tables(teacher).items()}
    del teacher
    target = input_embeddings(model)
    n_rows = min(table.shape[0], target.weight.shape[0])
    width, source_width = target.weight.shape[1], table.shape[1]
    centred = table[:n_rows] - table[:n_rows].mean(0)
    _, vectors = torch.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
    kept = min(width, source_width)
    basis = vectors.flip(-1)[:, :kept]
    projected = centred @ basis
    scale = target.weight.std() / projected.std().clamp_min(1e-12)
    with torch.no_grad():
        target.weight[:n_rows, :kept] = (projected * scale).to(target.weight.dtype)
        if target.padding_idx is not None and target.padding_idx < n_rows:
            target.weight[target.padding_idx].zero_()
        # A transformer student also adds position and segment embeddings to the word pieces:
        # the teacher's, in the same directions and scale, keep the sums as the teacher had them.
        mine = _position_tables(getattr(model, "model", None))
        also = []
        for name, source in extras.items():
            if name in mine and source.shape[1] == source_width:
                n = min(len(source), len(mine[name]))
                mine[name][:n, :kept] = ((source[:n] @ basis) * scale).to(mine[name].dtype)
                also.append(name.replace("_embeddings", ""))
    return (f"word-piece embeddings start from the teacher's ({n_rows} rows, {source_width} → {kept} "
            f"principal directions{'' if kept == width else f', {width - kept} columns random'}"
            f"{'; ' + ' and '.join(also) + ' too' if also else ''})")


def keep_embedding_rows(model: Any, rows: Sequence[int]) -> None:
    """Cut a student's word-piece table to ``rows`` of it, in order: row *i* of the new table is
    old row ``rows[i]`` (a pruned vocabulary, :mod:`.vocab`). Works for every student that maps
    word pieces through one table: ``bilstm``, ``cnn`` and the transformers (``transformer-*``,
    ``teacher-layers:K``); the padding row moves with its piece."""
    import torch

    model = getattr(model, "module", model)
    index = torch.as_tensor(list(rows), dtype=torch.long)
    hf = model.model if model.arch == "hf" else None
    old = hf.get_input_embeddings() if hf is not None else model.embed
    pad = hf.config.pad_token_id if hf is not None else model.config["pad_id"]
    new_pad = int((index == pad).nonzero()[0, 0]) if pad is not None and bool((index == pad).any()) else None
    # from the rows themselves: a fresh table would draw random numbers, and a seeded run would
    # then train differently from the same run with the full vocabulary
    table = torch.nn.Embedding.from_pretrained(old.weight.detach()[index].clone(), freeze=False, padding_idx=new_pad)
    if hf is not None:
        hf.set_input_embeddings(table)
        hf.config.vocab_size = len(index)
        if new_pad is not None:
            hf.config.pad_token_id = new_pad
    else:
        model.embed = table
        model.config.update(vocab_size=len(index), pad_id=new_pad if new_pad is not None else 0)


def _position_tables(model: Any) -> dict[str, Any]:
    """The position and token-type embedding tables of a BERT-like model (``weight`` tensors)."""
    import torch

    embeddings = getattr(getattr(model, "base_model", None), "embeddings", None)
    tables = {}
    for name in ("position_embeddings", "token_type_embeddings"):
        table = getattr(embeddings, name, None)
        if isinstance(table, torch.nn.Embedding):
            tables[name] = table.weight
    return tables


def save_student(model: Any, tokenizer: Any, folder: str | Path, meta: dict[str, Any]) -> Path:
    """Write a student folder (see the module docstring) and return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    if getattr(model, "arch", None) is None and hasattr(model, "generate"):  # a causal LM (generation)
        with quiet_hf():
            model.save_pretrained(folder / "model")
        tokenizer.save_pretrained(str(folder / "tokenizer"))
        tokenizer.save_pretrained(str(folder / "model"))  # so model/ alone serves as an ``lm:`` teacher
        meta = {"task": "generation", **meta, "arch": CAUSAL, "arch_config": {"model_type": model.config.model_type}}
        (folder / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
        return folder
    if model.arch == "hf":
        with quiet_hf():
            model.model.save_pretrained(folder / "model")
    else:
        from safetensors.torch import save_file

        save_file(
            {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()},
            str(folder / "model.safetensors"),
        )
    tokenizer.save_pretrained(str(folder / "tokenizer"))
    meta = {**meta, "arch": model.arch, "arch_config": model.config}
    (folder / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
    return folder


def recover_interrupted_save(folder: str | Path) -> Path:
    """``folder`` whole again after a save that was killed between its two renames.

    A checkpoint is saved as ``<name>.partial``, the previous one renamed to ``<name>.old``, then
    the partial renamed to ``<name>``. A kill between the renames leaves no ``<name>``: the
    previous checkpoint, still whole in ``<name>.old``, is renamed back (the next save clears the
    stale ``.partial``). Does nothing when ``folder`` exists or no ``.old`` with a student does."""
    folder = Path(folder)
    old = folder.with_name(folder.name + ".old")
    if not folder.exists() and (old / META_FILE).is_file():
        with contextlib.suppress(OSError):  # another process recovered it first, or read-only
            old.rename(folder)
    return folder


def student_folder(path: str | Path) -> Path:
    """The student folder inside ``path``: itself, or a run folder's ``best/`` (else ``last/``);
    a checkpoint whose save was interrupted is recovered first (``recover_interrupted_save``)."""
    path = Path(path)
    for candidate in (path, path / "best", path / "last"):
        if candidate.name != "" and not candidate.exists():
            recover_interrupted_save(candidate)
        if (candidate / META_FILE).is_file():
            return candidate
    raise ConfigError(
        f"{path}: no saved student here (expected {META_FILE}, or best/ or last/ with one)"
    )


def load_student(path: str | Path, *, device: str | None = None) -> tuple[Any, Any, dict[str, Any]]:
    """Load ``(model, tokenizer, meta)`` from a student folder or a run folder (its best
    checkpoint). The model is in eval mode on ``device`` (default CPU)."""
    from kdstudio.core.students.encoders import ARCHS, HFStudent
    from kdstudio.core.students.tokenizer import load_tokenizer

    folder = student_folder(path)
    meta = json.loads((folder / META_FILE).read_text())
    tokenizer = load_tokenizer(folder / "tokenizer")
    if meta["arch"] == CAUSAL:
        from transformers import AutoModelForCausalLM

        with quiet_hf():
            model = AutoModelForCausalLM.from_pretrained(str(folder / "model"), trust_remote_code=False)
    elif meta["arch"] == "hf":
        from transformers import AutoModelForSequenceClassification

        with quiet_hf():
            model = HFStudent(
                AutoModelForSequenceClassification.from_pretrained(str(folder / "model"), trust_remote_code=False)
            )
    else:
        from safetensors.torch import load_file

        config = dict(meta["arch_config"])
        vocab, n_labels = config.pop("vocab_size"), config.pop("n_labels")
        if "widths" in config:
            config["widths"] = tuple(config["widths"])
        model = ARCHS[meta["arch"]](vocab, n_labels, **config)
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return model.to(device or "cpu").eval(), tokenizer, meta


def predict_probs(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    max_length: int = 128,
    device: str | None = None,
) -> Any:
    """Class probabilities (``np.ndarray``, one row per text, in the order given).

    Texts are batched by length with dynamic padding; the result does not depend on how the
    texts are grouped. ``device`` defaults to the model's.
    """
    import numpy as np
    import torch

    from kdstudio.core.students.tokenizer import encode, pad_id

    model = getattr(model, "module", model)
    device = device or next(model.parameters()).device
    ids = encode(tokenizer, list(texts), max_length)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    n_labels = _n_labels(model)
    out = np.zeros((len(ids), n_labels), dtype=np.float32)
    was_training = model.training
    if was_training:  # toggling walks every module: skip it in the common (eval) case
        model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            input_ids, mask = pad_batch([ids[i] for i in chunk], pad_id(tokenizer))
            logits = model(input_ids.to(device), mask.to(device))
            out[chunk] = torch.softmax(logits.float(), -1).cpu().numpy()
    if was_training:
        model.train()
    return out


def pad_batch(sequences: Sequence[Sequence[int]], pad: int) -> tuple[Any, Any]:
    """Right-pad token id lists to the longest one: ``(input_ids, attention_mask)`` int64 tensors."""
    import numpy as np
    import torch

    width = max((len(s) for s in sequences), default=1)
    ids = np.full((len(sequences), width), pad, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def count_parameters(model: Any, *, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those that train)."""
    model = getattr(model, "module", model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _n_labels(model: Any) -> int:
    if model.arch == "hf":
        return int(model.model.config.num_labels)
    return int(model.config["n_labels"])


__all__ = [
    "META_FILE",
    "STUDENTS",
    "StudentFigure",
    "StudentFigures",
    "StudentInfo",
    "build_student",
    "count_parameters",
    "default_epochs",
    "default_lr",
    "init_embeddings_from_teacher",
    "input_embeddings",
    "keep_embedding_rows",
    "load_student",
    "measure_students",
    "pad_batch",
    "parse_student_spec",
    "predict_probs",
    "recover_interrupted_save",
    "resolve_student",
    "save_student",
    "student_folder",
    "students_for",
    "uses_own_tokenizer",
]
