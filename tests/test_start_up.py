"""What starting rnnkit costs: ``import rnnkit`` loads nothing beyond ``import torch`` but rnnkit's own modules (no
``torch._dynamo``, which took 2.3 s), and ``rnnkit --help`` and ``rnnkit tasks`` load no task library (pandas,
scikit-learn, matplotlib, ...): those load where a task uses them. The times are measured in docs/benchmarks.md;
a test holds the modules, which do not depend on how busy the machine is."""

from __future__ import annotations

import json
import sys

from cli_helpers import run_process

HEAVY = ("torch._dynamo", "torch._inductor", "pandas", "sklearn", "scipy", "matplotlib", "seqeval", "sacrebleu",
         "sacremoses", "nltk", "sentencepiece", "pretty_midi", "mido", "fastapi", "starlette", "uvicorn",
         "prometheus_client")
COMMAND_LINE = {"tyro", "docstring_parser", "yaml", "safetensors"}  # what parsing options and reading runs need


def loaded(code: str) -> set[str]:
    """The modules loaded by running ``code`` in a fresh interpreter."""
    result = run_process([sys.executable, "-c", f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"],
                         timeout=120)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_import_rnnkit_loads_only_rnnkit_beyond_torch():
    torch, rnnkit = loaded("import torch"), loaded("import rnnkit")
    assert sorted(name for name in rnnkit - torch if not name.startswith("rnnkit")) == []
    assert not any(name == heavy or name.startswith(heavy + ".") for name in rnnkit for heavy in HEAVY)


def test_help_and_tasks_load_no_task_library():
    rnnkit = loaded("import rnnkit")
    command = loaded("import contextlib, io\nfrom rnnkit.cli import main\n"
                     "with contextlib.redirect_stdout(io.StringIO()): main(['--help']); main(['tasks'])")
    added = {name.split(".")[0] for name in command - rnnkit if not name.startswith(("rnnkit", "_"))}
    assert added <= COMMAND_LINE | set(sys.stdlib_module_names) | {"cython_runtime"}, sorted(added - COMMAND_LINE)
    assert not any(name == heavy or name.startswith(heavy + ".") for name in command for heavy in HEAVY)
