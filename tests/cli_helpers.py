"""Running the real ``rnnkit`` entry point in a subprocess (or, for bad input, in this process), on small
texts made here."""

from __future__ import annotations

import contextlib
import hashlib
import io
import multiprocessing
import os
import signal
import subprocess
import sys
import traceback
from pathlib import Path

import torch
from safetensors.torch import load_file

# A small model and budget: a run takes a second or two, most of it importing torch.
TINY = ["--hidden-size", "16", "--embedding-size", "8", "--batch-size", "4", "--bptt", "16",
        "--max-minutes", "0", "--log-every", "1", "--precision", "fp32"]


def make_text(path: Path, characters: int = 6000) -> Path:
    verse = ("Shall I compare thee to a summer's day?\nThou art more lovely and more temperate:\n"
             "Rough winds do shake the darling buds of May,\nAnd summer's lease hath all too short a date.\n")
    path.write_text((verse * (characters // len(verse) + 1))[:characters], encoding="utf-8")
    return path


def rnnkit(*arguments, env: dict | None = None, timeout: float = 180, cwd: Path | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    return run_process([sys.executable, "-m", "rnnkit", *map(str, arguments)], timeout=timeout, env=environment, cwd=cwd)


def run_process(command: list, timeout: float, input: str | None = None, **options) -> subprocess.CompletedProcess:
    """``subprocess.run(command, capture_output=True, text=True, timeout=timeout)``, except that when it runs past
    ``timeout`` (or the test is interrupted) the command's whole process group is killed: subprocess.run kills only
    the command, and the processes it started (torchrun's workers) would run on through the rest of the tests."""
    process = subprocess.Popen(list(map(str, command)), stdin=subprocess.PIPE if input is not None else None,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               **options)
    try:
        stdout, stderr = process.communicate(input, timeout=timeout)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def rnnkit_here(*arguments, threads: int | None = None) -> subprocess.CompletedProcess:
    """``rnnkit`` run by its entry point in this process, with the same result as ``rnnkit(...)``.

    For every call that tests no process-level behaviour: a subprocess spends 3 to 5 s of each
    importing torch and loading what the first call loads. An exception that would print a
    traceback is written to stderr as one, so that ``assert_one_line_error`` fails on it as it
    would on the subprocess's. The process-level contract (exit status, nothing else printed, a
    kill) is checked through subprocesses elsewhere. ``threads``: torch's thread count for the call,
    as OMP_NUM_THREADS gives a subprocess (a small model's learning test runs faster on one)."""
    from rnnkit.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    previous_threads = torch.get_num_threads()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            if threads is not None:
                torch.set_num_threads(threads)
            status = main([str(argument) for argument in arguments])
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else 1
        except Exception:
            traceback.print_exc()
            status = 1
        finally:
            torch.set_num_threads(previous_threads)
    return subprocess.CompletedProcess(["rnnkit", *map(str, arguments)], status, stdout.getvalue(), stderr.getvalue())


# Processes to kill: forked from a server that has imported torch and rnnkit once (multiprocessing's forkserver), so
# each is a real process that SIGKILL ends with nothing run after it, without a fresh interpreter's 3 to 5 s of
# imports. The server runs no torch computation, so its forks inherit no thread pool (forking after OpenMP has run
# can hang the child).
_FORKS = multiprocessing.get_context("forkserver")
_FORKS.set_forkserver_preload(["torch", "rnnkit.cli", "cli_helpers"])


def start_rnnkit(*arguments, env: dict | None = None, log: Path | None = None) -> multiprocessing.Process:
    """``rnnkit`` started in a forked process (``env`` added to its environment, its output written to ``log``);
    ``.kill()`` sends SIGKILL, and ``.exitcode`` is -9 after a kill, as a subprocess's return code would be."""
    process = _FORKS.Process(target=_run_rnnkit, args=([str(argument) for argument in arguments], env or {},
                                                       str(log or os.devnull)))
    process.start()
    return process


def _run_rnnkit(arguments: list[str], env: dict, log: str) -> None:
    os.environ.update(env)
    with open(log, "ab", buffering=0) as output:
        os.dup2(output.fileno(), 1)
        os.dup2(output.fileno(), 2)
    from rnnkit.cli import main

    sys.exit(main(arguments))


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str, status: int = 2) -> str:
    """Exit status 2, no traceback, and one line on stderr that contains every fragment."""
    assert result.returncode == status, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def weights(run: Path) -> dict:
    pointer = (run / "checkpoint.json").read_text()
    import json

    return load_file(str(run / json.loads(pointer)["directory"] / "model.safetensors"))


def tree_digest(path: Path) -> str:
    """A digest of every file name and content under ``path``: equal digests mean nothing changed."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()
