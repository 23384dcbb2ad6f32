"""The README's two set-up commands and CI stay in step, and the smoke entry point runs."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block is not None and text.index("```bash") < text.index("\n## "), "README must begin with the commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_begins_with_exactly_two_commands_and_ci_runs_the_test_one():
    commands = readme_commands()
    assert len(commands) == 2
    main_job, test_command = commands
    assert "rnnkit" in main_job.split("&&")[-1]
    assert "pytest" in test_command
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_smoke_run_trains_every_cell_and_rejects_unknown_arguments():
    done = subprocess.run([sys.executable, "-m", "rnnkit"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for cell in ("rnn", "lstm", "gru", "janet", "indrnn"):
        line = next(line for line in done.stdout.splitlines() if line.split()[:1] == [cell])
        first, last = map(float, re.findall(r"MSE ([\d.]+) -> ([\d.]+)", line)[0])
        assert last < first / 2, line  # every cell learns something in a few seconds
    bad = subprocess.run([sys.executable, "-m", "rnnkit", "fly"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
