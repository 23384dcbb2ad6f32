"""Multi-process training through torchrun and DistributedDataParallel (gloo on CPU, NCCL on GPU).

``torchrun --nproc_per_node=N -m rnnkit train ...`` starts N copies of the command with
RANK/WORLD_SIZE/LOCAL_RANK set; each reads its own shard of the data, DDP averages the
gradients, and only rank 0 writes the run folder. Without torchrun everything here is a
no-op on a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from rnnkit.errors import UserError


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over processes (a copy; the input is unchanged)."""
        values = values.clone()
        if self.active:
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def broadcast_from_main(self, values: torch.Tensor) -> torch.Tensor:
        """Rank 0's ``values`` on every process, so that decisions (stop, learning rate) agree."""
        if self.active:
            values = values.clone()
            dist.broadcast(values, src=0)
        return values

    def broadcast_object(self, value):
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


SINGLE_PROCESS = Distributed()


def select_device(choice: str, context: Distributed) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available here; use --device cpu or auto")
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", context.local_rank)


def initialise(device_choice: str) -> tuple[Distributed, torch.device]:
    """Join the process group torchrun describes in the environment (if any) and pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    context = Distributed(int(os.environ.get("RANK", "0")), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    device = select_device(device_choice, context)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return context, device
