"""The student networks. Every student maps ``(input_ids, attention_mask)`` to logits.

``BiLSTMStudent`` and ``CNNStudent`` are small word-piece encoders trained from scratch;
``HFStudent`` wraps any ``AutoModelForSequenceClassification`` (built from a config, loaded
from a checkpoint, or cut down from the teacher).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class BiLSTMStudent(nn.Module):
    """One bidirectional LSTM layer (150 units each way), max-pooled over time, then a ReLU layer and the classifier:
    the student of Tang et al. 2019, "Distilling Task-Specific Knowledge from BERT into Simple
    Neural Networks" (arXiv:1903.12136)."""

    arch = "bilstm"

    def __init__(
        self,
        vocab_size: int,
        n_labels: int,
        *,
        pad_id: int = 0,
        embed_dim: int = 128,
        hidden: int = 150,
        fc: int = 256,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.config = {
            "vocab_size": vocab_size,
            "n_labels": n_labels,
            "pad_id": pad_id,
            "embed_dim": embed_dim,
            "hidden": hidden,
            "fc": fc,
            "dropout": dropout,
        }
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.lstm = nn.LSTM(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(2 * hidden, fc),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(fc, n_labels),
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        lengths = attention_mask.sum(1).clamp_min(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embed(input_ids), lengths, batch_first=True, enforce_sorted=False
        )
        states, _ = nn.utils.rnn.pad_packed_sequence(
            self.lstm(packed)[0], batch_first=True, total_length=input_ids.shape[1]
        )
        states = states.masked_fill(
            ~attention_mask.bool().unsqueeze(-1), torch.finfo(states.dtype).min
        )
        return self.head(states.max(dim=1).values)


class CNNStudent(nn.Module):
    """Kim 2014, "Convolutional Neural Networks for Sentence Classification": parallel 1-D
    convolutions of widths 3, 4, 5, max-over-time pooling, dropout and a linear classifier."""

    arch = "cnn"

    def __init__(
        self,
        vocab_size: int,
        n_labels: int,
        *,
        pad_id: int = 0,
        embed_dim: int = 128,
        filters: int = 128,
        widths: tuple[int, ...] = (3, 4, 5),
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.config = {
            "vocab_size": vocab_size,
            "n_labels": n_labels,
            "pad_id": pad_id,
            "embed_dim": embed_dim,
            "filters": filters,
            "widths": list(widths),
            "dropout": dropout,
        }
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, filters, w, padding=w - 1) for w in widths)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(filters * len(widths), n_labels)
        self._fused: tuple[tuple[int, ...], torch.Tensor, torch.Tensor] | None = None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.embed(input_ids)
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return self._convolve(x, attention_mask)  # ONNX export: a plain convolution, which every runtime knows
        # A batch without padding (always the case for one text) needs no masking: skipping it
        # saves operations, which is what a single short text costs on a CPU.
        padded = not bool(attention_mask.all())
        if padded:
            x = x * attention_mask.unsqueeze(-1).to(x.dtype)
        # All widths in one matrix product over windows of the widest: a width-w filter is a
        # widest filter whose first taps are zero, and position t sees tokens t-w+1..t, as a
        # convolution padded by w-1 and cut to the input's length does. On a CPU this is several
        # times faster than three small convolutions (which take a slow im2col path).
        widest = max(conv.kernel_size[0] for conv in self.convs)
        weight, bias = self._fused_filters(
            widest, cache=not (self.training or torch.is_grad_enabled())
        )
        windows = nn.functional.pad(x, (0, 0, widest - 1, 0)).unfold(1, widest, 1).flatten(2)
        h = torch.relu(nn.functional.linear(windows, weight, bias))
        if padded:
            h = h.masked_fill(~attention_mask.bool().unsqueeze(-1), torch.finfo(h.dtype).min)
        return self.out(self.dropout(h.max(dim=1).values))

    def _convolve(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The same result through plain convolutions, for any batch (what an ONNX export traces).

        Position t sees tokens t-w+1..t only, and padding comes after a text's tokens, so a
        position of the text never sees padding: only the pooling has to leave padded positions
        out. With the fused filters already computed by an inference call (``export_classifier``
        makes one), a single convolution: every width's filters as filters of the widest width
        whose first taps are zero, over the input with widest-1 zeros in front, and the padded
        positions set to zero after the ReLU (its outputs are ≥ 0, so the maximum is unchanged).
        A runtime then runs a handful of nodes, which at batch 1 is most of the cost. Otherwise
        one convolution per width."""
        x = x.transpose(1, 2)
        widest = max(conv.kernel_size[0] for conv in self.convs)
        key = tuple(p._version for conv in self.convs for p in (conv.weight, conv.bias))
        if self._fused is not None and self._fused[0] == key:
            weight = self._fused[1].view(self._fused[1].shape[0], -1, widest)  # constants in the graph
            h = torch.relu(nn.functional.conv1d(nn.functional.pad(x, (widest - 1, 0)), weight, self._fused[2]))
            h = h * attention_mask.unsqueeze(1).to(h.dtype)
            return self.out(self.dropout(h.max(dim=2).values))
        padding = ~attention_mask.bool().unsqueeze(1)
        pooled = []
        for conv in self.convs:
            h = torch.relu(conv(x))[:, :, : x.shape[2]]  # padding adds w-1 positions at the end
            pooled.append(h.masked_fill(padding, torch.finfo(h.dtype).min).max(dim=2).values)
        return self.out(self.dropout(torch.cat(pooled, dim=1)))

    def _fused_filters(self, widest: int, *, cache: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The filters of every width as one (filters × widths, embed × widest) matrix and its bias.
        Kept between calls in inference, until a weight changes (its version counter moves)."""
        key = tuple(p._version for conv in self.convs for p in (conv.weight, conv.bias))
        if cache and self._fused is not None and self._fused[0] == key:
            return self._fused[1], self._fused[2]
        weight = torch.cat(
            [nn.functional.pad(conv.weight, (widest - conv.kernel_size[0], 0)) for conv in self.convs]
        ).flatten(1)
        bias = torch.cat([conv.bias for conv in self.convs])
        self._fused = (key, weight.detach(), bias.detach()) if cache else None
        return weight, bias

    def _apply(self, fn, recurse=True):  # .to(device) / .half(): the cached matrix is stale
        self._fused = None
        return super()._apply(fn, recurse)


class HFStudent(nn.Module):
    """A Hugging Face sequence classifier seen as a student (``.model`` is the HF model)."""

    arch = "hf"

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.config = {}

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        output_hidden_states: bool = False,
    ) -> Any:
        """Logits; with ``output_hidden_states`` also the states of every layer (embeddings first)."""
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            output_hidden_states=output_hidden_states,
        )
        return (out.logits, tuple(out.hidden_states)) if output_hidden_states else out.logits

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)


ARCHS: dict[str, type[nn.Module]] = {"bilstm": BiLSTMStudent, "cnn": CNNStudent}
