"""The fit loop: steps, gradient clipping, the non-finite guard, evaluation, checkpoints, budgets.

It knows nothing about models, data or recurrent state beyond the training contract
(``rnnkit.train.session.Session``): batches whose reading position can be saved, a
training step that returns a loss and the state to carry (any nest of tensors, or None),
and an evaluation that names the metric to monitor. Early stopping, the plateau schedule
and the best result follow that metric, in its direction. Extra behaviour (the progress
bar, parameter constraints, fault injection for tests) comes from callbacks, not flags.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
from torch.nn.parallel import DistributedDataParallel

from rnnkit.errors import UserError
from rnnkit.train.callbacks import Callback
from rnnkit.train.checkpoint import Checkpoint
from rnnkit.train.config import TrainConfig, uses_bf16
from rnnkit.train.distributed import Distributed
from rnnkit.train.nest import flatten_nest, nest_size, unflatten_nest
from rnnkit.train.optim import LearningRateSchedule, build_optimizer
from rnnkit.train.run_folder import RunFolder
from rnnkit.train.session import Session


class TrainingDiverged(UserError):
    exit_status = 1


@dataclass
class Counters:
    """Everything about progress that a checkpoint must restore, besides tensors."""

    step: int = 0
    elapsed: float = 0.0  # seconds inside the fit loop, across resumptions
    units: int = 0  # the units the training steps counted (the session's ``unit``: characters, sentences), all processes
    nonfinite_steps: int = 0
    consecutive_nonfinite: int = 0
    evaluations: int = 0
    best: float | None = None  # the best value of the monitored metric so far (None before the first evaluation)
    evaluations_without_improvement: int = 0
    best_step: int = 0  # the step of the best evaluation (its model is in best/ with --keep-best)


class Trainer:
    def __init__(self, session: Session, config: TrainConfig, run: RunFolder, context: Distributed,
                 metadata: dict, callbacks: tuple[Callback, ...] = ()) -> None:
        self.session, self.config, self.run, self.context = session, config, run, context
        self.model = session.model
        self.metadata = metadata  # {"config": ..., "task_state": ...} stored in every checkpoint
        self.callbacks = callbacks
        self.network = DistributedDataParallel(self.model) if context.active else self.model
        self.parameters = [p for p in self.model.parameters() if p.requires_grad]
        self.device = self.parameters[0].device
        self.bf16 = uses_bf16(config.precision, self.device)
        self.optimizer = build_optimizer(self.parameters, config)
        self.schedule = LearningRateSchedule(config)
        self.counters = Counters()
        self.carried = None  # the state the session carries from one batch to the next (truncated BPTT), any nest
        self.last_evaluation: dict = {}
        self.best_evaluation: dict = {}  # the metrics of the model --keep-best keeps, once this process has seen them
        self.stop_reason = ""

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
        if self.config.keep_best:
            self._restore_best()
        return self._summary()

    def _restore_best(self) -> None:
        """Put the best evaluation's model back (every process reads it from the run folder)."""
        best = self.run.best_checkpoint()
        if best is not None:
            self.model.load_state_dict(best.model)

    def _step(self) -> dict:
        batch = self.session.batches.next_batch()
        lr = self.schedule.apply(self.optimizer, self.counters.step, self.progress())
        self.network.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss, carried, count = self.session.training_step(self.network, batch, self.carried)
        if self.context.active:  # DDP averages the processes' gradients: make that the mean over all their terms
            terms = self.session.loss_terms(batch)
            loss = loss * (terms * self.context.world_size / float(self.context.sum(torch.tensor([float(terms)]))))
        for callback in self.callbacks:
            loss = callback.on_loss(self, self.counters.step + 1, loss)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.config.clip_grad_norm or math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.parameters, clip))  # the norm before clipping
        loss_value = float(self.context.sum(loss.detach().reshape(1).double())) / self.context.world_size
        finite = math.isfinite(loss_value) and math.isfinite(grad_norm)
        self.counters.step += 1
        if finite:
            self.optimizer.step()
            for callback in self.callbacks:
                callback.on_update(self)
            self.carried = carried
            self.counters.consecutive_nonfinite = 0
        else:
            self._skip_nonfinite(loss_value, grad_norm)
        self.counters.units += count * self.context.world_size
        return {"step": self.counters.step, "loss": loss_value, "grad_norm": grad_norm, "lr": lr,
                "epoch": round(self.session.batches.epoch_progress(), 4), "units": self.counters.units, "finite": finite}

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
            parts.append(self.session.batches.epoch_progress() / c.epochs)
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
            metrics = self.session.evaluate(self.model)
        self.model.train()
        monitor = self.session.monitor
        if monitor.metric not in metrics:
            raise KeyError(f"{type(self.session).__name__}.evaluate() returned no {monitor.metric!r}, its monitored metric")
        self.counters.evaluations += 1
        best = monitor.worst if self.counters.best is None else self.counters.best
        improved = monitor.improved(metrics[monitor.metric], best)
        if improved:
            self.counters.best, self.counters.evaluations_without_improvement = metrics[monitor.metric], 0
            self.counters.best_step, self.best_evaluation = self.counters.step, metrics
            if self.config.keep_best:
                self.run.save_best(Checkpoint(config=self.metadata["config"], task_state=self.metadata["task_state"],
                                              model=self.model.state_dict(), training={"step": self.counters.step}))
        else:
            self.counters.evaluations_without_improvement += 1
        self.schedule.observe(improved)
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
        carried_structure = None
        if self.carried is not None:
            carried_structure, parts = flatten_nest(self.carried)
            for index, part in enumerate(parts):
                for rank, value in enumerate(self._gather(part)):
                    tensors[f"carried.{index}.{rank}"] = value
        training = {"counters": asdict(self.counters), "batches": self.session.batches.state_dict(),
                    "schedule": self.schedule.state_dict(), "carried": carried_structure,
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
        self.session.batches.load_state_dict(training["batches"])
        self.counters = Counters(**_current_counters(training["counters"]))
        torch.set_rng_state(checkpoint.tensors[f"rng.torch.{rank}"])
        if f"rng.cuda.{rank}" in checkpoint.tensors:
            torch.cuda.set_rng_state(checkpoint.tensors[f"rng.cuda.{rank}"])
        structure = training["carried"]
        if structure is True:  # checkpoints before the architecture issue: a flat tuple, True when present
            count = len({name.split(".")[1] for name in checkpoint.tensors if name.startswith("carried.")})
            structure = {"tuple": ["tensor"] * count}
        if structure:
            parts = [checkpoint.tensors[f"carried.{index}.{rank}"].to(device) for index in range(nest_size(structure))]
            self.carried = unflatten_nest(structure, parts)

    def _gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        if not self.context.active:
            return [tensor.detach().cpu()]
        parts = [torch.empty_like(tensor) for _ in range(self.context.world_size)]
        torch.distributed.all_gather(parts, tensor.detach().contiguous())
        return [part.cpu() for part in parts]

    def _summary(self) -> dict:
        c = self.counters
        summary = {
            "steps": c.step, "epochs": round(self.session.batches.epoch_progress(), 4), "elapsed_seconds": round(c.elapsed, 2),
            "unit": self.session.unit, "units": c.units,
            "units_per_second": round(c.units / c.elapsed, 1) if c.elapsed else None,
            "validation": (self.config.keep_best and self.best_evaluation) or self.last_evaluation,
            f"best_validation_{self.session.monitor.metric}": c.best,
            "best_step": c.best_step,
            "nonfinite_steps": c.nonfinite_steps, "stop_reason": self.stop_reason or "budget",
        }
        for callback in self.callbacks:
            callback.on_end(self, summary)
        return summary


def _current_counters(saved: dict) -> dict:
    """Counters as saved, in today's names: checkpoints before the architecture issue kept ``best_loss``, and
    before the contracts issue called the units counted ``tokens``."""
    saved = dict(saved)
    if "best_loss" in saved:
        best = saved.pop("best_loss")
        saved["best"] = None if math.isinf(best) else best
    if "tokens" in saved:
        saved["units"] = saved.pop("tokens")
    return saved

