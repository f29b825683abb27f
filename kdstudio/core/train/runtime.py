"""Where the arithmetic happens: device choice, mixed precision and several processes.

One process: plain PyTorch on CUDA > MPS > CPU, bf16 autocast on CUDA where supported
(fp16 with a gradient scaler otherwise). Under ``accelerate launch`` (``WORLD_SIZE`` > 1) the
same calls go through Hugging Face Accelerate, which wraps the model for data parallelism.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch

from kdstudio.core.errors import ConfigError


def pick_device(preference: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; a named device must exist."""
    has_mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA GPU is available here (use --device auto or cpu)")
    if preference == "mps" and not has_mps:
        raise ConfigError(
            "--device mps: Apple MPS is not available here (use --device auto or cpu)"
        )
    return torch.device(preference)


def distributed() -> bool:
    """True when started by ``accelerate launch`` / ``torchrun`` with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


class Runtime:
    """Device, autocast, backward, clipping and stepping, for one process or several."""

    def __init__(self, device: str = "auto") -> None:
        self.accelerator: Any = None
        self.scaler: Any = None
        if distributed():
            from accelerate import Accelerator

            cpu = device == "cpu" or not torch.cuda.is_available()
            precision = "no" if cpu else "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            self.accelerator = Accelerator(cpu=cpu, mixed_precision=precision)
            self.device = self.accelerator.device
            self.rank, self.world = self.accelerator.process_index, self.accelerator.num_processes
            self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
            return
        self.device = pick_device(device)
        self.rank, self.world = 0, 1
        self.amp_dtype = None
        if self.device.type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            if self.amp_dtype == torch.float16:
                self.scaler = torch.amp.GradScaler("cuda")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def prepare(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[Any, Any]:
        if self.accelerator is not None:
            return self.accelerator.prepare(model, optimizer)
        return model, optimizer

    def broadcast(self, value: Any) -> Any:
        """The main process's ``value``, on every process."""
        if self.accelerator is None:
            return value
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value])[0]

    def unwrap(self, model: Any) -> Any:
        return self.accelerator.unwrap_model(model) if self.accelerator is not None else model

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.accelerator is not None:
            return self.accelerator.autocast()
        if self.amp_dtype is not None:
            return torch.autocast(self.device.type, dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def no_sync(self, model: Any, sync: bool) -> contextlib.AbstractContextManager:
        """Skip the gradient all-reduce on micro-batches before the last one of a step."""
        if self.accelerator is not None and not sync:
            return self.accelerator.no_sync(model)
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        if self.accelerator is not None:
            self.accelerator.backward(loss)
        elif self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def clip(self, parameters: list[torch.nn.Parameter], optimizer: Any, max_norm: float) -> None:
        if max_norm <= 0:
            return
        if self.accelerator is not None:
            self.accelerator.clip_grad_norm_(parameters, max_norm)
            return
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(parameters, max_norm)

    def step(self, optimizer: Any) -> None:
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def empty_cache(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def peak_memory_mb(self) -> float | None:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return None
