"""Run ``rnnkit train`` once per entry of a JSON file (a list of argument lists), in this one process.

For the two-process test: ``torchrun --nproc_per_node=2 tests/train_each.py RUNS.json`` trains every
task in the same two processes, paying their start-up once rather than once per task. The runs
share one process group: joining and leaving it once per run (as ``rnnkit train`` does) races
in c10d's rendezvous when one process joins the next group before the other has left the last.
"""

import json
import sys

import torch.distributed as dist

from rnnkit.cli import main
from rnnkit.train.distributed import Distributed

Distributed.close = lambda self: None  # rnnkit.train.distributed.initialise joins the group the first run made
for arguments in json.loads(open(sys.argv[1]).read()):
    status = main(arguments)
    if status != 0:
        sys.exit(status)
if dist.is_initialized():
    dist.destroy_process_group()
