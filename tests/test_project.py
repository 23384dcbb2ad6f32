"""The README's two set-up commands and CI stay in step."""

import re
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
    assert main_job.split("&&")[-1].strip() == "rnnkit train"
    assert "pytest" in test_command
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_task_libraries_are_extras_that_the_test_command_installs():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    tasks = " ".join(project["optional-dependencies"]["tasks"])
    for library in ("seqeval", "scikit-learn", "nltk", "matplotlib", "sacrebleu", "sacremoses", "sentencepiece", "pandas",
                    "scipy", "pretty_midi"):
        assert library not in core and library in tasks, library
    assert "rnnkit[tasks,export,serve]" in project["optional-dependencies"]["dev"]  # the README's test command installs [dev]
    serve = " ".join(project["optional-dependencies"]["serve"])
    for library in ("fastapi", "uvicorn", "prometheus_client"):
        assert library not in core and library in serve, library
    export = " ".join(project["optional-dependencies"]["export"])
    for library in ("onnx", "onnxruntime", "onnxscript"):
        assert library not in core and library in export, library
