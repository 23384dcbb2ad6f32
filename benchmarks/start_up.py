"""How long rnnkit takes to start: ``import torch``, ``import rnnkit``, ``rnnkit --help`` and ``rnnkit tasks``, each a
fresh interpreter, for one or more versions of the source, round-robin so that the machine's load falls on all
alike; the median of ``--repeats`` runs, and each one's cost over ``import torch``.

    python benchmarks/start_up.py --source before=/tmp/before/src --source after=src --repeats 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CASES = {
    "import torch": ["-c", "import torch"],
    "import rnnkit": ["-c", "import rnnkit"],
    "rnnkit --help": ["-m", "rnnkit", "--help"],
    "rnnkit tasks": ["-m", "rnnkit", "tasks"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", action="append", default=[], help="NAME=SRC_DIR (default: this checkout's src)")
    parser.add_argument("--repeats", type=int, default=10)
    options = parser.parse_args()
    versions = dict(source.split("=", 1) for source in options.source) or {"this checkout": "src"}
    times = {(version, case): [] for version in versions for case in CASES}
    for _ in range(options.repeats):
        for version, source in versions.items():
            for case, arguments in CASES.items():
                started = time.perf_counter()
                subprocess.run([sys.executable, *arguments], env={**os.environ, "PYTHONPATH": os.path.abspath(source)},
                               capture_output=True, check=True)
                times[version, case].append(time.perf_counter() - started)
    for version in versions:
        torch_time = statistics.median(times[version, "import torch"])
        cells = []
        for case in CASES:
            median = statistics.median(times[version, case])
            cells.append(f"{case} {median:.2f} s" + (f" (+{median - torch_time:.2f})" if case != "import torch" else ""))
        print(f"{version}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
