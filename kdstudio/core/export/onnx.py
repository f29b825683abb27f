"""ONNX files of a classifier: the float export, its int8 twin, and a predictor that serves either.

A classifier here is any ``torch.nn.Module`` mapping ``(input_ids, attention_mask)`` (int64,
batch × sequence) to one float tensor (logits or probabilities): every student, and a local
teacher wrapped as one. The graph keeps both axes dynamic, so one file serves batch 1 and batch 64.

:func:`quantize_int8` is onnxruntime's dynamic quantization: weights of the matrix products,
convolutions, embedding lookups and LSTMs stored as signed 8-bit integers with a scale, activations
quantized on the fly; about a quarter of the float file.

:class:`OnnxClassifier` tokenizes raw texts with the model's tokenizer (the same ids KD Studio
trains on, :func:`kdstudio.core.students.tokenizer.encode`), pads a batch and runs the session;
``predict(texts)`` returns one row per text, so timing it includes tokenization as a user's
service would.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from kdstudio.core.errors import ConfigError

OPSET = 17
INPUTS = ("input_ids", "attention_mask")
#: The ways an int8 export tries, smallest file first, as ``(short name, op types, per channel)``:
#: onnxruntime's whole dynamic set (None: MatMul, Gather — the embedding tables —, Conv, LSTM,
#: Attention, ...) with one scale per weight tensor, the same with one scale per output channel,
#: then the matrix products and embedding lookups only, which leaves convolutions and recurrent
#: cells in float where quantizing them costs too much agreement, and last the embedding tables
#: alone (most of a small student's weights, and the gentlest cut).
INT8_OP_SETS: tuple[tuple[str, tuple[str, ...] | None, bool], ...] = (
    ("all", None, False),
    ("all-per-channel", None, True),
    ("matmul+embeddings", ("MatMul", "Gather"), False),
    ("embeddings", ("Gather",), False),
)


def require_onnx() -> tuple[Any, Any]:
    """``(onnx, onnxruntime)``, or one ConfigError line saying how to install them."""
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise ConfigError(
            "ONNX export needs the onnx and onnxruntime packages, which KD Studio installs by default; "
            "this environment lacks them (pip install onnx onnxruntime; `kdstudio doctor` checks the install)"
        ) from None
    return onnx, onnxruntime


def export_classifier(model: Any, sample: tuple[Any, Any], path: str | Path, *, output: str = "logits") -> Path:
    """Write ``model`` (in eval mode, on the CPU) to ``path`` as ONNX, traced on ``sample``
    (``(input_ids, attention_mask)``, at least two rows), and check the file. Returns ``path``."""
    import torch

    onnx, _ = require_onnx()

    class TwoInputs(torch.nn.Module):
        """``model`` seen through ``forward(input_ids, attention_mask)`` alone: the exporter feeds a
        forward's further parameters their defaults as graph inputs (a transformers student's
        ``output_hidden_states=False`` would become a tensor the model cannot read)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.model(input_ids, attention_mask)

    path = Path(path)
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        model(*sample)  # an inference call first: what a model caches for inference is traced as constants
        torch.onnx.export(
            TwoInputs().eval(),
            tuple(sample),
            str(path),
            input_names=list(INPUTS),
            output_names=[output],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, output: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    _constants_as_initializers(path)
    onnx.checker.check_model(str(path))
    return path


def _constants_as_initializers(path: Path) -> None:
    """Turn the graph's constant tensors of two or more dimensions (weights computed before the
    export, as a cnn's fused filters) into initializers: quantization looks for weights there."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph, moved = model.graph, []
    for node in graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            tensor = node.attribute[0].t
            if len(tensor.dims) >= 2:
                graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(tensor), node.output[0]))
                moved.append(node)
    if moved:
        for node in moved:
            graph.node.remove(node)
        onnx.save(model, str(path))


def quantize_int8(
    source: str | Path, target: str | Path, op_types: Sequence[str] | None = None, *, per_channel: bool = False
) -> Path:
    """Dynamic int8 quantization of the ONNX file ``source`` into ``target`` (onnxruntime's
    ``quantize_dynamic``, signed 8-bit weights). ``op_types`` names the operators to quantize
    (None or empty: onnxruntime's defaults, see :data:`INT8_OP_SETS`); ``per_channel`` gives each
    output channel of a weight its own scale. Returns ``target``."""
    require_onnx()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = Path(target)
    with warnings.catch_warnings(), _quiet_quantizer():
        warnings.simplefilter("ignore")
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                         op_types_to_quantize=list(op_types) if op_types else None, per_channel=per_channel)
    return target


def compare_outputs(reference: Any, candidate: Any, batches: Iterable[tuple[Any, Any]]) -> tuple[float, float, int]:
    """Run two sessions (or anything :func:`run_ids` takes) on the same padded ``(input_ids,
    attention_mask)`` batches: ``(top-1 agreement, largest absolute output difference, rows)``.
    The agreement is the share of rows whose highest output is the same label in both."""
    import numpy as np

    same, rows, worst = 0, 0, 0.0
    for ids, mask in batches:
        expected, got = run_ids(reference, ids, mask), run_ids(candidate, ids, mask)
        same += int((expected.argmax(-1) == got.argmax(-1)).sum())
        rows += len(expected)
        worst = max(worst, float(np.abs(got.astype(np.float64) - expected).max())) if len(expected) else worst
    return (same / rows if rows else 1.0), worst, rows


def session(path: str | Path, *, threads: int | None = None) -> Any:
    """An onnxruntime CPU session on ``path``; ``threads`` caps its intra-op threads."""
    _, onnxruntime = require_onnx()
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: no notes about unused initializers on stderr
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_ids(sess: Any, input_ids: Any, attention_mask: Any) -> Any:
    """The session's first output on padded int64 arrays (numpy or torch)."""
    feed = {
        "input_ids": _numpy(input_ids),
        "attention_mask": _numpy(attention_mask),
    }
    return sess.run(None, feed)[0]


class OnnxClassifier:
    """Raw texts in, one output row per text out, through an ONNX session.

    ``tokenizer`` and ``max_length`` are the model's (a student's saved tokenizer, a teacher's);
    ``pad`` its padding id. Batches are padded to their longest text, as KD Studio's own predictor does.
    """

    def __init__(self, path: str | Path, tokenizer: Any, max_length: int, *, threads: int | None = None) -> None:
        from kdstudio.core.students.tokenizer import pad_id

        self.path = Path(path)
        self.tokenizer, self.max_length = tokenizer, max_length
        self.pad = pad_id(tokenizer)
        self.session = session(self.path, threads=threads)

    def predict(self, texts: Sequence[str]) -> Any:
        import numpy as np

        from kdstudio.core.students.tokenizer import encode

        rows = encode(self.tokenizer, list(texts), self.max_length)
        width = max((len(r) for r in rows), default=1)
        ids = np.full((len(rows), width), self.pad, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]

    __call__ = predict


def file_size(path: str | Path) -> int:
    """Bytes of an ONNX file (and of its external-data file, when the weights live beside it)."""
    path = Path(path)
    extra = path.with_name(path.name + ".data")
    return path.stat().st_size + (extra.stat().st_size if extra.is_file() else 0)


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """Hold back the quantizer's advice on stderr (it logs a pre-processing hint at WARNING)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


def _numpy(array: Any) -> Any:
    import numpy as np

    return array.numpy() if hasattr(array, "numpy") else np.asarray(array, dtype=np.int64)


__all__ = [
    "INT8_OP_SETS",
    "OnnxClassifier",
    "compare_outputs",
    "export_classifier",
    "file_size",
    "quantize_int8",
    "require_onnx",
    "run_ids",
    "session",
]
