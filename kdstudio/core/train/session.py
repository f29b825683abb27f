"""One training run's state, built once: everything a checkpoint saves and restores.

``Session(project, config, resume_run)`` asks the task for the rows, picks the tokenizer,
builds (or reloads) the student, and sets up the optimizer, the learning-rate schedule and the
batch order; ``save`` writes a checkpoint of all of it (``train.checkpoint``), ``metric``
records a metric, ``stop`` records how a run ended. The loop that drives a session is
``kdstudio.core.train.loop``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Any

import torch

from kdstudio.core.errors import ConfigError
from kdstudio.core.events import EtaClock, Metric
from kdstudio.core.store import Project, now
from kdstudio.core.store.live import RunHold, hold_run
from kdstudio.core.students import (
    default_epochs,
    default_lr,
    init_embeddings_from_teacher,
    keep_embedding_rows,
    load_student,
    uses_own_tokenizer,
)
from kdstudio.core.threads import set_torch_threads
from kdstudio.core.train.checkpoint import (
    LoopState,
    load_checkpoint,
    resume_config,
    rng_state,
    run_folder,
    save_checkpoint,
)
from kdstudio.core.train.config import TrainConfig
from kdstudio.core.train.data import LengthBucketBatcher
from kdstudio.core.train.runtime import Runtime
from kdstudio.core.train.task import task_for


class Session:
    """One training run: its task and data, the model, optimizer, schedule and loop position."""

    def __init__(self, project: Project, config: TrainConfig, resume_run: int | None) -> None:
        self.project, self.notes = project, []
        if resume_run is not None:
            config = resume_config(project, resume_run, config)
            self.notes.append(f"resuming run {resume_run} with its stored settings")
        self.cfg = config.validate()
        self.rt = Runtime(self.cfg.device)
        cpu = self.rt.device.type == "cpu"  # leave the GUI a core; share the cores among processes
        self._threads = (set_torch_threads(self.cfg.num_threads, processes=self.rt.world) if cpu
                         else torch.get_num_threads())
        self.teacher_id = self._teacher_id()
        self.task = task_for(project, self.cfg, self.rt)
        data = self.task.load(project, teacher_id=self.teacher_id)
        self.train_rows, self.valid_rows = data.train, data.valid
        self.reviews_used = data.reviews_used
        self.calibration = data.calibration
        self.notes += data.notes
        self.labels = project.labels()
        self.run_id = resume_run
        torch.manual_seed(self.cfg.seed)
        teacher_path = self.task.teacher_path(self._teacher_spec())
        self.vocab_rows: list[int] | None = None  # pruned vocabulary: new id → the teacher's id
        if resume_run is not None:
            model, self.tokenizer, meta = load_student(run_folder(project.path, resume_run) / "last")
            self.tokenizer_source = meta.get("tokenizer_source", "checkpoint")
            self.vocab = meta.get("vocab") or {"kind": "full", "size": len(self.tokenizer)}
            if self.vocab["kind"] == "pruned" and self.cfg.hidden_mse > 0 and teacher_path:
                from kdstudio.core.students.tokenizer import load_tokenizer
                from kdstudio.core.students.vocab import teacher_ids_of

                self.vocab_rows = teacher_ids_of(self.tokenizer, load_tokenizer(teacher_path))
        else:
            self.tokenizer, self.tokenizer_source = self.task.choose_tokenizer(teacher_path, data, self.notes)
            self.vocab = {"kind": "full" if self.tokenizer_source == "teacher" else self.tokenizer_source,
                          "size": len(self.tokenizer)}
            pruned = (self._prune_vocabulary() if self.cfg.vocab == "pruned" and self.tokenizer_source == "teacher"
                      and self.task.prunes_vocab else None)
            # The student is built, and starts, exactly as with the teacher's full vocabulary (the same
            # random draws, the same teacher vectors); pruning then drops the rows the project never
            # uses, which no text of it can reach: on the project's texts the two runs compute the same.
            model = self.task.build_student(self.tokenizer, teacher_path=teacher_path)
            if (self.cfg.embed_init == "teacher" and self.tokenizer_source == "teacher"
                    and self.task.embeds_from_teacher and not uses_own_tokenizer(self.cfg.student)):
                self.notes.append(init_embeddings_from_teacher(model, teacher_path))
            if pruned is not None:
                keep_embedding_rows(model, pruned.teacher_ids)
                self.tokenizer, self.vocab_rows = pruned.tokenizer, pruned.teacher_ids
        self.task.teacher_ids = self.vocab_rows
        for rows in (self.train_rows, self.valid_rows):
            self.task.encode(rows, self.tokenizer)
        hidden = self._hidden_state_teacher(model, teacher_path)
        self.task.attach(self.tokenizer, hidden)
        self.projection = hidden[1] if hidden is not None else None
        self.lr = self.cfg.lr or default_lr(self.cfg.student)
        self.epochs = self.cfg.epochs or default_epochs(self.cfg.student)
        model = model.to(self.rt.device).train()
        params = [p for p in model.parameters() if p.requires_grad]
        params += list(self.projection.parameters()) if self.projection is not None else []
        decay = {"params": [p for p in params if p.ndim >= 2], "weight_decay": self.cfg.weight_decay}
        no_decay = {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}
        optimizer = torch.optim.AdamW([decay, no_decay], lr=self.lr)
        self.model, self.optimizer = self.rt.prepare(model, optimizer)
        self.params = params
        self.group_size = self.cfg.batch_size * self.cfg.grad_accum * self.rt.world
        self.batcher = LengthBucketBatcher(
            self.train_rows.lengths, self.group_size, self.cfg.seed, world=self.rt.world, rank=self.rt.rank
        )
        if len(self.batcher) == 0:
            raise ConfigError(
                f"too few training examples ({len(self.train_rows)}) for {self.rt.world} processes"
            )
        self.total_steps = self.epochs * len(self.batcher)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.state = LoopState(micro=self.cfg.batch_size)
        self.log_every = self.cfg.log_every or max(1, self.total_steps // 500)
        self.t0: float | None = None  # when this session's training started (monotonic)
        self.clock: EtaClock | None = None
        self._pending_rows: list[tuple] = []
        self.flushed_at = time.monotonic()
        if resume_run is not None:
            self.state = load_checkpoint(
                run_folder(project.path, resume_run) / "last",
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                scaler=self.rt.scaler,
                projection=self.projection,
            )
        self.rng_at_boundary = rng_state()
        self.live: RunHold | None = None
        self.stored_config = {**self.cfg.to_dict(), "lr": self.lr, "epochs": self.epochs}
        if self.rt.is_main:
            self._open_run_record()
        self.run_id = self.rt.broadcast(self.run_id)

    # -- setup helpers ------------------------------------------------------------------------
    def _prune_vocabulary(self) -> Any:
        """The teacher's word pieces that the project's texts use (a ``PrunedVocab``), or None, with a
        line in the log, when the tokenizer cannot be pruned."""
        from kdstudio.core.students.vocab import PruningError, prune_wordpiece

        counter = _Counted(self.project.texts())
        try:
            pruned = prune_wordpiece(self.tokenizer, counter)
        except PruningError as exc:
            self.notes.append(f"kept the teacher's full vocabulary: {exc}")
            return None
        if pruned is not None:
            self.vocab = {"kind": "pruned", "size": pruned.size, "teacher_size": pruned.teacher_size}
            self.notes.append(pruned.note(counter.n))
        return pruned

    def _teacher_id(self) -> int | None:
        if self.cfg.teacher is not None:
            if self.project.teacher(self.cfg.teacher) is None:
                raise ConfigError(f"no teacher {self.cfg.teacher} in this project")
            return self.cfg.teacher
        return self.project.default_teacher()

    def _teacher_spec(self) -> str | None:
        teacher = self.project.teacher(self.teacher_id) if self.teacher_id is not None else None
        return teacher["spec"] if teacher else None

    def _hidden_state_teacher(self, model: Any, teacher_path: str | None) -> tuple[Any, Any] | None:
        """For ``--hidden-mse``: the frozen teacher encoder and a learned projection from the
        student's width to the teacher's (None when off)."""
        if self.cfg.hidden_mse <= 0:
            return None
        if (
            not teacher_path
            or getattr(model, "arch", "") != "hf"
            or self.tokenizer_source not in ("teacher", "checkpoint")
        ):
            raise ConfigError(
                "--hidden-mse needs a local transformer teacher and a transformer student that "
                "uses the teacher's tokenizer (transformer-*, teacher-layers:K)"
            )
        from transformers import AutoModel

        teacher = AutoModel.from_pretrained(teacher_path, trust_remote_code=False)
        teacher = teacher.to(self.rt.device).eval().requires_grad_(False)
        torch.manual_seed(self.cfg.seed + 1)
        projection = torch.nn.Linear(model.hidden_size, teacher.config.hidden_size).to(self.rt.device)
        return teacher, projection

    def _lr_factor(self, step: int) -> float:
        warm = int(self.cfg.warmup_ratio * self.total_steps)
        if step < warm:
            return (step + 1) / (warm + 1)
        progress = (step - warm) / max(1, self.total_steps - warm)
        if self.cfg.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return max(0.0, 1.0 - progress)

    def _open_run_record(self) -> None:
        if self.run_id is None:
            self.run_id = self.project.create_run(
                self.cfg.student, self.teacher_id, self.stored_config, name=self.cfg.name
            )
        else:
            self.project.truncate_metrics(self.run_id, self.state.step)
            self.project.update_run(self.run_id, status="running", error=None, finished=None)
        run_folder(self.project.path, self.run_id).mkdir(parents=True, exist_ok=True)
        # held while this process trains the run: a run left "running" without it was interrupted
        self.live = hold_run(self.project.path, self.run_id)

    # -- while training -----------------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds of training in this run, across resumes."""
        return self.state.elapsed_s + (time.monotonic() - self.t0 if self.t0 is not None else 0.0)

    def epoch_float(self) -> float:
        return round(self.state.epoch + self.state.group / max(1, len(self.batcher)), 4)

    def metric(self, name: str, value: float) -> Metric:
        """A ``Metric`` event for the current step, queued to be written to the project."""
        wall = round(self.elapsed(), 3)
        self._pending_rows.append((self.state.step, self.epoch_float(), wall, name, float(value)))
        return Metric(name, float(value), self.state.step, self.epoch_float(), wall, run=self.run_id)

    def flush_metrics(self, project: Project | None = None) -> None:
        if self._pending_rows and self.rt.is_main and self.run_id is not None:
            (project or self.project).add_metrics(self.run_id, self._pending_rows)
        self._pending_rows, self.flushed_at = [], time.monotonic()

    def save(self, which: str) -> None:
        """Write checkpoint ``best`` or ``last`` (see ``train.checkpoint``); main process only."""
        if not self.rt.is_main or self.run_id is None:
            return
        meta = {
            "spec": self.cfg.student,
            "labels": self.labels,
            "max_length": self.cfg.max_length,
            "run": self.run_id,
            "step": self.state.step,
            "epoch": self.epoch_float(),
            "teacher": self.teacher_id,
            "tokenizer_source": self.tokenizer_source,
            "vocab": self.vocab,
            "hard_labels": self.cfg.hard_labels,
            "temperature": self.cfg.temperature,
            "alpha": self.cfg.alpha,
            "created": now(),
            "valid": self.state.best_metrics if which == "best" else {},
            **self.task.checkpoint_meta(),
        }
        save_checkpoint(
            run_folder(self.project.path, self.run_id) / which,
            model=self.rt.unwrap(self.model),
            tokenizer=self.tokenizer,
            meta=meta,
            config=self.stored_config,
            loop=LoopState(**{**asdict(self.state), "elapsed_s": self.elapsed()}),
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            rng=self.rng_at_boundary,
            scaler=self.rt.scaler,
            projection=self.projection,
        )

    def stop(self, status: str, *, error: str | None = None) -> None:
        """The stop path (cancel, failure, abandoned generator): keep the last checkpoint when the
        run was cancelled, record the status. Works from any thread (opens its own connection)."""
        if not self.rt.is_main or self.run_id is None:
            return
        with Project(self.project.path) as project:
            self.flush_metrics(project)
            if status == "cancelled" and self.t0 is not None:
                self.save("last")
            fields: dict[str, Any] = {"status": status}
            last = run_folder(project.path, self.run_id) / "last"
            if last.is_dir():
                fields["last_checkpoint"] = str(last)
            if error:
                fields["error"] = error
            project.update_run(self.run_id, **fields)

    def restore_threads(self) -> None:
        set_torch_threads(self._threads)

    def release(self) -> None:
        """Let go of the run's liveness lock (its status is recorded by now)."""
        if self.live is not None:
            self.live.release()


class _Counted:
    """An iterable of texts that counts what it yields (``n``)."""

    def __init__(self, texts: Any) -> None:
        self.texts, self.n = texts, 0

    def __iter__(self) -> Any:
        for text in self.texts:
            self.n += 1
            yield text
