"""Training a task's model: the run folder, resuming, the trainer, and what is written when training ends.

``rnnkit train`` parses the options and calls ``train_task``; Python code (the forecasting
API, ``rnnkit.tasks.forecast.RecurrentForecaster``) calls it with a configuration it built itself.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from rnnkit.errors import UserError
from rnnkit.tasks.base import RunConfig, Task
from rnnkit.train import distributed
from rnnkit.train.callbacks import standard_callbacks
from rnnkit.train.progress import ProgressBar
from rnnkit.train.run_folder import RunFolder
from rnnkit.train.session import Session
from rnnkit.train.trainer import Trainer

# What the model and its data are: a resumed run must agree with its checkpoint on these.
RESUME_MUST_MATCH = ("model", "dataset", "train.batch_size")


def _first_difference(saved, requested, path: str = "") -> tuple[str, object, object] | None:
    if isinstance(saved, dict) and isinstance(requested, dict):
        for key in saved.keys() | requested.keys():
            found = _first_difference(saved.get(key), requested.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    return None if saved == requested else (path, saved, requested)


def _check_resume_matches(run: RunFolder, task: Task, resolved: dict) -> None:
    # The saved configuration over today's defaults: an option added since the run started reads as its default.
    saved = task.default_config().with_values(run.saved_config(), f"{run.path}/config.yaml").resolved(task.name)
    for name in RESUME_MUST_MATCH:
        group, _, key = name.partition(".")
        old, new = saved.get(group, {}), resolved.get(group, {})
        old, new = (old.get(key), new.get(key)) if key else (old, new)
        difference = _first_difference(old, new, name)
        if difference:
            where, was, asked = difference
            raise UserError(
                f"--resume: the checkpoint in {run.path} was trained with {where}={was!r}, but this command asks for "
                f"{asked!r}; drop that option to continue the run, or start a new run with another --out"
            )


def _default_out(task: Task) -> str:
    base = Path("runs") / f"{task.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, suffix = base, 1
    while candidate.exists():
        candidate, suffix = Path(f"{base}-{suffix}"), suffix + 1
    return str(candidate)


def _beside(summary: dict, added: dict, task: Task) -> dict:
    """The task's entries for summary.json, which may add to the trainer's but never replace one."""
    replaced = sorted(added.keys() & summary.keys())
    if replaced:
        raise ValueError(f"{type(task).__name__}: its session's test_summary() returns {', '.join(replaced)}, which "
                         "the trainer's summary holds already; name its entries otherwise")
    return added


def train_task(task: Task, config: RunConfig) -> tuple[Path, dict, Session]:
    """Train ``task`` as ``config`` says (resuming, or in a new run folder), write summary.json and the task's files,
    print the result, and return the run folder, the summary and the session holding the trained model."""
    resolved = config.resolved(task.name)
    if config.resume and not config.out:
        raise UserError("--resume: name the run folder to continue with --out")
    context, device = distributed.initialise(config.train.device)
    try:
        out = context.broadcast_object(config.out or _default_out(task))
        run = RunFolder(Path(out), writer=context.is_main)
        # Rank 0 alone looks, before anyone writes: the others would see the folder it creates.
        taken = context.broadcast_object(run.is_taken())
        if config.resume:
            run.check_resumable()
            _check_resume_matches(run, task, resolved)
        elif taken and not config.overwrite:
            raise run.taken_error()  # the folder is kept as it is

        torch.manual_seed(config.train.seed)  # the same initial weights on every process
        session = task.start(config, context, device)  # reads and checks the data before touching the folder
        if not config.resume:
            run.create(resolved)
        context.barrier()
        torch.manual_seed(config.train.seed + context.rank)  # each process its own dropout noise
        metadata = {"config": resolved, "task_state": session.task_state()}
        callbacks = standard_callbacks() + ((ProgressBar(session.unit),) if context.is_main else ())
        trainer = Trainer(session, config.train, run, context, metadata, callbacks)
        if config.resume:
            checkpoint = run.latest_checkpoint()
            if checkpoint is not None:
                trainer.restore(checkpoint)
            run.truncate_metrics(checkpoint.step if checkpoint else 0)
        if context.is_main:
            precision = "bf16" if trainer.bf16 else "fp32"
            print(f"rnnkit train {task.name}: run folder {run.path}, device {device} ({precision}), "
                  f"{context.world_size} process(es), {sum(p.numel() for p in session.model.parameters()):,} parameters",
                  file=sys.stderr)
        summary = {"task": task.name, **trainer.fit()}
        summary.update(_beside(summary, session.test_summary(), task))
        run.write_summary(summary)
        if context.is_main:
            for path in session.write_files(run.path):
                print(f"wrote {path}", file=sys.stderr)
            print(f"{session.report(summary['validation'])} after {summary['steps']} steps "
                  f"({summary['elapsed_seconds']:.0f} s, {summary['stop_reason']}); run folder {run.path}")
            for name in summary:  # "test", and the variants a task adds ("test_unseen": chat's unseen contexts)
                if name == "test" or name.startswith("test_"):
                    print(session.report(summary[name], label=name.replace("_", " ")))
            sample = session.finish()
            if sample:
                print(sample)
        return run.path, summary, session
    finally:
        context.close()
