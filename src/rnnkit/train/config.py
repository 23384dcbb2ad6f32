"""Typed configuration of a training run: the budget, the optimiser and its schedule, the machine."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rnnkit.errors import UserError
from rnnkit.kernels.native import cpu_computes_bf16
from rnnkit.train.optim import OPTIMIZERS, SCHEDULES


@dataclass
class TrainConfig:
    """How to train (command-line options shared by every task)."""

    epochs: float = 0.0
    """Stop after this many passes over the training data (0: no limit)."""
    max_minutes: float = 5.0
    """Wall-clock budget of the training loop, evaluations included (0: no limit)."""
    max_steps: int = 0
    """Stop after this many optimiser steps (0: no limit). With a step budget, runs are reproducible."""
    batch_size: int = 64
    """Sequences per step and process; with several processes the global batch is their sum."""
    lr: float = 3e-3
    """Peak learning rate."""
    optimizer: str = "adam"
    """Optimiser: sgd, adam, adamw or rmsprop."""
    weight_decay: float = 0.0
    """Weight decay (decoupled for adamw)."""
    momentum: float = 0.9
    """Momentum for sgd and rmsprop."""
    schedule: str = "cosine"
    """Learning-rate schedule: constant, step, plateau or cosine (over the run's budget)."""
    warmup_steps: int = 0
    """Linear warm-up from 0 to --lr over this many steps."""
    min_lr_ratio: float = 0.05
    """cosine: final learning rate as a fraction of --lr."""
    step_every: int = 1000
    """step: multiply the learning rate by --gamma every this many steps."""
    step_start: int = 0
    """step: the first multiplication comes after this many steps (0: after --step-every)."""
    gamma: float = 0.5
    """step and plateau: the factor applied to the learning rate."""
    plateau_patience: int = 1
    """plateau: evaluations without improvement before the learning rate is reduced."""
    clip_grad_norm: float = 1.0
    """Clip the global gradient norm to this value (0: no clipping; the norm is logged either way)."""
    eval_every: int = 200
    """Evaluate (and checkpoint) every this many steps, and at the end."""
    patience: int = 0
    """Early stopping: stop after this many evaluations without improvement (0: off)."""
    keep_best: bool = False
    """Keep the model of the best validation result (in best/): the test metrics, predict and the other
    commands then use it instead of the last one (Keras' restore_best_weights)."""
    max_nonfinite: int = 5
    """Stop after this many consecutive steps with a non-finite loss or gradient (each is skipped)."""
    log_every: int = 10
    """Write a metrics line every this many steps."""
    seed: int = 1337
    """Random seed; CPU runs with a step budget are bit-for-bit reproducible."""
    device: str = "auto"
    """auto, cpu or cuda."""
    precision: str = "auto"
    """fp32, bf16 (autocast for the training steps; evaluation always runs in fp32), or auto:
    bf16 where the processor computes it natively (AVX512-BF16/AMX CPUs, bf16 GPUs), else fp32."""

    def validate(self) -> None:
        positive = ("batch_size", "eval_every", "max_nonfinite", "log_every", "step_every", "plateau_patience")
        for name in positive:
            if getattr(self, name) <= 0:
                raise UserError(f"--{_flag(name)}: expected a positive integer, got {getattr(self, name)}")
        if not self.lr > 0:
            raise UserError(f"--lr: expected a positive learning rate, got {self.lr}")
        for name in ("epochs", "max_minutes", "max_steps", "weight_decay", "clip_grad_norm", "warmup_steps", "patience",
                     "step_start"):
            if getattr(self, name) < 0:
                raise UserError(f"--{_flag(name)}: expected a value >= 0, got {getattr(self, name)}")
        if not 0 <= self.momentum < 1:
            raise UserError(f"--momentum: expected a value in [0, 1), got {self.momentum}")
        if not 0 < self.gamma <= 1:
            raise UserError(f"--gamma: expected a factor in (0, 1], got {self.gamma}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise UserError(f"--min-lr-ratio: expected a fraction in [0, 1], got {self.min_lr_ratio}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise UserError(f"--device: expected auto, cpu or cuda, got {self.device!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise UserError(f"--precision: expected auto, fp32 or bf16, got {self.precision!r}")
        if self.epochs == 0 and self.max_minutes == 0 and self.max_steps == 0:
            raise UserError("no training budget: set --max-minutes, --max-steps or --epochs (0 means no limit)")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"--optimizer: expected one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise UserError(f"--schedule: expected one of {', '.join(SCHEDULES)}, got {self.schedule!r}")


def _flag(name: str) -> str:
    return name.replace("_", "-")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matrix products natively (so autocast speeds training up)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_computes_bf16()


def uses_bf16(precision: str, device: torch.device) -> bool:
    return precision == "bf16" or (precision == "auto" and native_bf16(device))
