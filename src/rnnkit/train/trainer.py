"""The fit loop: steps, gradient clipping, the non-finite guard, evaluation, checkpoints, budgets.

It knows nothing about models or data beyond a small contract (``TrainingTask``): a
stream of batches whose reading position can be saved, a loss, and an evaluation. Extra
behaviour (the progress bar) comes from callbacks, not flags.

Fault injection for tests: ``RNNKIT_INJECT_NONFINITE=5,6`` replaces the loss of steps 5
and 6 with NaN, so the guard against non-finite steps can be exercised end to end.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Protocol

import torch
from torch.nn.parallel import DistributedDataParallel

from rnnkit.errors import UserError
from rnnkit.layers import apply_constraints, detach_state
from rnnkit.train.checkpoint import Checkpoint
from rnnkit.train.config import TrainConfig, uses_bf16
from rnnkit.train.distributed import Distributed
from rnnkit.train.optim import LearningRateSchedule, build_optimizer
from rnnkit.train.run_folder import RunFolder


class TrainingTask(Protocol):
    """What the trainer needs from a task (see rnnkit.tasks)."""

    batches: object  # next_window(), epoch_progress(), state_dict(), load_state_dict()

    def loss(self, network, window, state) -> tuple[torch.Tensor, object, int]: ...  # (mean loss, state, tokens)

    def evaluate(self, model) -> dict[str, float]: ...  # must contain "loss"


class TrainingDiverged(UserError):
    exit_status = 1


@dataclass
class Counters:
    """Everything about progress that a checkpoint must restore, besides tensors."""

    step: int = 0
    elapsed: float = 0.0  # seconds inside the fit loop, across resumptions
    tokens: int = 0  # training tokens seen, all processes
    nonfinite_steps: int = 0
    consecutive_nonfinite: int = 0
    evaluations: int = 0
    best_loss: float = math.inf
    evaluations_without_improvement: int = 0


class Callback:
    def on_start(self, trainer: "Trainer") -> None: ...
    def on_step(self, trainer: "Trainer", record: dict) -> None: ...
    def on_evaluate(self, trainer: "Trainer", record: dict) -> None: ...
    def on_end(self, trainer: "Trainer", summary: dict) -> None: ...
    def on_abort(self, trainer: "Trainer") -> None: ...


class Trainer:
    def __init__(self, model, task: TrainingTask, config: TrainConfig, run: RunFolder, context: Distributed,
                 metadata: dict, callbacks: tuple[Callback, ...] = ()) -> None:
        self.model, self.task, self.config, self.run, self.context = model, task, config, run, context
        self.metadata = metadata  # {"config": ..., "task_state": ...} stored in every checkpoint
        self.callbacks = callbacks
        self.network = DistributedDataParallel(model) if context.active else model
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.device = self.parameters[0].device
        self.bf16 = uses_bf16(config.precision, self.device)
        self.optimizer = build_optimizer(self.parameters, config)
        self.schedule = LearningRateSchedule(config)
        self.counters = Counters()
        self.carried = None  # recurrent state carried between consecutive windows (truncated BPTT)
        self.last_evaluation: dict = {}
        self.stop_reason = ""
        self._injected = {int(s) for s in os.environ.get("RNNKIT_INJECT_NONFINITE", "").split(",") if s.strip()}

    # ------------------------------------------------------------------ the loop
    def fit(self) -> dict:
        try:
            return self._fit()
        except BaseException:
            for callback in self.callbacks:
                callback.on_abort(self)
            raise

    def _fit(self) -> dict:
        for callback in self.callbacks:
            callback.on_start(self)
        started = time.perf_counter() - self.counters.elapsed
        window_loss, window_steps = 0.0, 0
        while not self._budget_spent():
            record = self._step()
            self.counters.elapsed = float(self.context.broadcast_from_main(torch.tensor(time.perf_counter() - started, dtype=torch.float64)))
            if record["finite"]:
                window_loss, window_steps = window_loss + record["loss"], window_steps + 1
            if self.counters.step % self.config.log_every == 0 and window_steps:
                record.update(loss=window_loss / window_steps, elapsed=self.counters.elapsed)
                self.run.log({"event": "train", **{k: v for k, v in record.items() if k != "finite"}})
                window_loss, window_steps = 0.0, 0
            for callback in self.callbacks:
                callback.on_step(self, record)
            if self.counters.step % self.config.eval_every == 0:
                self._evaluate_and_checkpoint()
                if self._early_stop():
                    break
        if self.counters.step % self.config.eval_every != 0 or not self.last_evaluation:
            self._evaluate_and_checkpoint()
        return self._summary()

    def _step(self) -> dict:
        window = self.task.batches.next_window()
        if window.starts_epoch:
            self.carried = None
        lr = self.schedule.apply(self.optimizer, self.counters.step, self.progress())
        self.network.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss, carried, tokens = self.task.loss(self.network, window, self.carried)
        if self.counters.step + 1 in self._injected:
            loss = loss * float("nan")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.config.clip_grad_norm or math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.parameters, clip))  # the norm before clipping
        loss_value = float(self.context.sum(loss.detach().reshape(1).double())) / self.context.world_size
        finite = math.isfinite(loss_value) and math.isfinite(grad_norm)
        self.counters.step += 1
        if finite:
            self.optimizer.step()
            apply_constraints(self.model)
            self.carried = detach_state(carried)
            self.counters.consecutive_nonfinite = 0
        else:
            self._skip_nonfinite(loss_value, grad_norm)
        self.counters.tokens += tokens * self.context.world_size
        return {"step": self.counters.step, "loss": loss_value, "grad_norm": grad_norm, "lr": lr,
                "epoch": round(self.task.batches.epoch_progress(), 4), "tokens": self.counters.tokens, "finite": finite}

    def _skip_nonfinite(self, loss_value: float, grad_norm: float) -> None:
        """The step is not applied; the carried state is dropped, since it may hold NaN too."""
        self.optimizer.zero_grad(set_to_none=True)
        self.carried = None
        self.counters.nonfinite_steps += 1
        self.counters.consecutive_nonfinite += 1
        self.run.log({"event": "nonfinite", "step": self.counters.step, "loss": repr(loss_value), "grad_norm": repr(grad_norm)})
        if self.counters.consecutive_nonfinite >= self.config.max_nonfinite:
            raise TrainingDiverged(
                f"training stopped at step {self.counters.step}: {self.counters.consecutive_nonfinite} consecutive steps "
                f"had a non-finite loss or gradient and were skipped; the last good checkpoint in {self.run.path} is intact. "
                "Lower --lr or set --clip-grad-norm, then --resume or start again"
            )

    # ------------------------------------------------------------------ budget and stopping
    def progress(self) -> float:
        """Fraction of the budget used: the furthest along of steps, epochs and minutes."""
        c, parts = self.config, [0.0]
        if c.max_steps:
            parts.append(self.counters.step / c.max_steps)
        if c.epochs:
            parts.append(self.task.batches.epoch_progress() / c.epochs)
        if c.max_minutes:
            parts.append(self.counters.elapsed / (60.0 * c.max_minutes))
        return max(parts)

    def _budget_spent(self) -> bool:
        if self.progress() >= 1.0:
            self.stop_reason = self.stop_reason or "budget"
            return True
        return False

    def _early_stop(self) -> bool:
        if self.config.patience and self.counters.evaluations_without_improvement >= self.config.patience:
            self.stop_reason = f"early stopping: no improvement in {self.config.patience} evaluations"
            return True
        return False

    # ------------------------------------------------------------------ evaluation and checkpoints
    def _evaluate_and_checkpoint(self) -> None:
        self.model.eval()
        with torch.no_grad():
            metrics = self.task.evaluate(self.model)
        self.model.train()
        self.counters.evaluations += 1
        if metrics["loss"] < self.counters.best_loss:
            self.counters.best_loss, self.counters.evaluations_without_improvement = metrics["loss"], 0
        else:
            self.counters.evaluations_without_improvement += 1
        self.schedule.observe(metrics["loss"])
        self.last_evaluation = metrics
        record = {"event": "eval", "step": self.counters.step, "elapsed": self.counters.elapsed, **metrics}
        self.run.log(record)
        for callback in self.callbacks:
            callback.on_evaluate(self, record)
        self.run.save_checkpoint(self.checkpoint())
        self.context.barrier()

    def checkpoint(self) -> Checkpoint:
        tensors = {}
        for rank, rng in enumerate(self._gather(torch.get_rng_state())):
            tensors[f"rng.torch.{rank}"] = rng
        if torch.cuda.is_available() and next(self.model.parameters()).is_cuda:
            for rank, rng in enumerate(self._gather(torch.cuda.get_rng_state().cuda())):
                tensors[f"rng.cuda.{rank}"] = rng.cpu()
        if self.carried is not None:
            for index, part in enumerate(self.carried):
                for rank, value in enumerate(self._gather(part)):
                    tensors[f"carried.{index}.{rank}"] = value
        training = {"counters": asdict(self.counters), "batches": self.task.batches.state_dict(),
                    "schedule": self.schedule.state_dict(), "carried": self.carried is not None,
                    "world_size": self.context.world_size, "step": self.counters.step}
        return Checkpoint(config=self.metadata["config"], task_state=self.metadata["task_state"],
                          model=self.model.state_dict(), training=training, tensors=tensors,
                          optimizer=self.optimizer.state_dict())

    def restore(self, checkpoint: Checkpoint) -> None:
        """Continue exactly where ``checkpoint`` was taken."""
        training, rank = checkpoint.training, self.context.rank
        if training.get("world_size", 1) != self.context.world_size:
            raise UserError(f"--resume: the run was trained with {training['world_size']} processes, not {self.context.world_size}; resume it with the same number")
        device = next(self.model.parameters()).device
        self.model.load_state_dict(checkpoint.model)
        self.optimizer.load_state_dict(checkpoint.optimizer)
        self.schedule.load_state_dict(training["schedule"])
        self.task.batches.load_state_dict(training["batches"])
        self.counters = Counters(**training["counters"])
        torch.set_rng_state(checkpoint.tensors[f"rng.torch.{rank}"])
        if f"rng.cuda.{rank}" in checkpoint.tensors:
            torch.cuda.set_rng_state(checkpoint.tensors[f"rng.cuda.{rank}"])
        if training["carried"]:
            count = len({name.split(".")[1] for name in checkpoint.tensors if name.startswith("carried.")})
            self.carried = tuple(checkpoint.tensors[f"carried.{i}.{rank}"].to(device) for i in range(count))

    def _gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        if not self.context.active:
            return [tensor.detach().cpu()]
        parts = [torch.empty_like(tensor) for _ in range(self.context.world_size)]
        torch.distributed.all_gather(parts, tensor.detach().contiguous())
        return [part.cpu() for part in parts]

    def _summary(self) -> dict:
        c = self.counters
        summary = {
            "steps": c.step, "epochs": round(self.task.batches.epoch_progress(), 4), "elapsed_seconds": round(c.elapsed, 2),
            "tokens": c.tokens, "tokens_per_second": round(c.tokens / c.elapsed, 1) if c.elapsed else None,
            "validation": self.last_evaluation, "best_validation_loss": c.best_loss,
            "nonfinite_steps": c.nonfinite_steps, "stop_reason": self.stop_reason or "budget",
        }
        for callback in self.callbacks:
            callback.on_end(self, summary)
        return summary
