"""Load test of ``rnnkit serve`` on this machine (loopback only, bounded in requests and time).

    python benchmarks/serve_load.py --checkpoint runs/sst-... --inputs sst.txt \
        --checkpoint runs/translate-... --inputs multi30k.txt [--requests 2000] [--concurrency 1 8 32 128]

For each model: a fresh ``rnnkit serve`` process per concurrency level, requests of one input each
(the inputs' lines in turn) kept CONCURRENCY at a time by wrk (Debian's package: a load generator
in C, so that the client takes little of the cores the server needs; a Python client was the
bottleneck here) for as long as about REQUESTS of them take at the rate of a 5-second warm-up (at
most --max-seconds); throughput, p50/p95/p99 latency, errors (non-2xx answers and socket errors),
and the server's resident memory before and after. At concurrency 32 the same server with
batching off (--max-batch 1) too, and 'rnnkit predict --file' on the same inputs (the ceiling: one
process, batches of 256, no HTTP). Also the time from starting 'rnnkit serve' to the first
answered request. Prints a Markdown table. With --soak ROUNDS: instead, one server per model under
the highest concurrency for ROUNDS rounds of --max-seconds, and its memory after each.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

# wrk's script: one request per input line in turn; print the numbers as JSON at the end.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies, sent = {}, 0
for line in io.lines("%(inputs)s") do table.insert(bodies, line) end
request = function()
  sent = sent + 1
  return wrk.format(nil, nil, nil, bodies[(sent - 1) %% #bodies + 1])
end
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format('{"requests": %%d, "seconds": %%f, "p50": %%f, "p95": %%f, "p99": %%f, "errors": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3, errors.connect + errors.read + errors.write + errors.status + errors.timeout))
end
"""


def start_server(checkpoint: str, *extra: str) -> tuple[subprocess.Popen, str, float]:
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "rnnkit", "serve", "--checkpoint", checkpoint, "--port", "0",
                                *extra], stderr=subprocess.PIPE, text=True)
    line = process.stderr.readline()
    match = re.search(r"at (http://\S+/) ", line)
    if match is None:
        raise SystemExit(f"the server did not start: {line}{process.stderr.read()}")
    return process, match.group(1), started


def resident_mib(process: subprocess.Popen) -> float:
    status = Path(f"/proc/{process.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def load(url: str, model: str, bodies: Path, seconds: float, concurrency: int) -> dict:
    """wrk keeping ``concurrency`` requests in flight for ``seconds``. (wrk runs for a duration: its threads can stop
    sending after a count, but it reports only when the duration ends.)"""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"inputs": bodies})
    result = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:.0f}s", "--timeout", "60s", "-s",
                             script.name, url + f"v1/models/{model}/predict"], capture_output=True, text=True, check=True)
    numbers = json.loads(result.stdout.strip().splitlines()[-1])
    return {**numbers, "throughput": numbers["requests"] / numbers["seconds"]}


def first_answer(checkpoint: str, model: str, text: str) -> float:
    process, url, started = start_server(checkpoint)
    try:
        httpx.post(url + f"v1/models/{model}/predict", json={"inputs": [text]}, timeout=120).raise_for_status()
        return time.perf_counter() - started
    finally:
        process.terminate()
        process.wait()


def ceiling(checkpoint: str, inputs_file: Path) -> float:
    result = subprocess.run([sys.executable, "-m", "rnnkit", "predict", "--checkpoint", checkpoint, "--file",
                             str(inputs_file), "--format", "jsonl"], capture_output=True, text=True, check=True)
    return float(re.search(r"\(([\d,.]+) inputs/s\)", result.stderr).group(1).replace(",", ""))


def read_inputs(path: str) -> list[str]:
    return [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def request_bodies(model: str, inputs: list[str]) -> Path:
    """wrk's request bodies: one input per request, the inputs in turn."""
    bodies = Path(tempfile.gettempdir()) / f"serve-load-{model}.jsonl"
    bodies.write_text("".join(json.dumps({"inputs": [text]}) + "\n" for text in inputs))
    return bodies


def soak(options: argparse.Namespace) -> None:
    concurrency = max(options.concurrency)
    for checkpoint, inputs_path in zip(options.checkpoint, options.inputs):
        model = Path(checkpoint).resolve().name
        bodies = request_bodies(model, read_inputs(inputs_path))
        process, url, _ = start_server(checkpoint)
        try:
            load(url, model, bodies, 5, concurrency)
            print(f"{model}: after a 5 s warm-up at concurrency {concurrency}: {resident_mib(process):.0f} MiB", flush=True)
            for number in range(options.soak):
                result = load(url, model, bodies, options.max_seconds, concurrency)
                print(f"{model}: round {number + 1}: {result['requests']} requests, {result['throughput']:.1f}/s, "
                      f"{result['errors']} errors, {resident_mib(process):.0f} MiB", flush=True)
        finally:
            process.terminate()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", required=True)
    parser.add_argument("--inputs", action="append", required=True, help="one input per line, for each --checkpoint")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--max-seconds", type=float, default=240, help="longest measured run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--soak", type=int, default=0, metavar="ROUNDS",
                        help="instead: one server per model, ROUNDS rounds of --max-seconds at the highest "
                             "--concurrency, its memory after each (does it grow with requests?)")
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: apt-get install wrk")
    if options.soak:
        return soak(options)
    print("| model | server | concurrency | requests | requests/s | p50 ms | p95 ms | p99 ms | errors | RSS before → after MiB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for checkpoint, inputs_path in zip(options.checkpoint, options.inputs):
        model = Path(checkpoint).resolve().name
        inputs = read_inputs(inputs_path)
        used = Path(tempfile.gettempdir()) / f"serve-load-{model}.txt"  # the same inputs, for predict --file
        used.write_text("\n".join(inputs[number % len(inputs)] for number in range(options.requests)) + "\n")
        bodies = request_bodies(model, inputs)
        runs = [("batching", concurrency, ()) for concurrency in options.concurrency]
        if 32 in options.concurrency:
            runs.append(("batching off (--max-batch 1)", 32, ("--max-batch", "1")))
        for server, concurrency, extra in runs:
            process, url, _ = start_server(checkpoint, *extra)
            try:
                warm = load(url, model, bodies, 5, concurrency)  # warm-up, and the rate that sizes the run
                before = resident_mib(process)
                seconds = min(max(options.requests / max(warm["throughput"], 1e-3), 5), options.max_seconds)
                result = load(url, model, bodies, seconds, concurrency)
                after = resident_mib(process)
            finally:
                process.terminate()
                process.wait()
            print(f"| {model} | {server} | {concurrency} | {result['requests']} | {result['throughput']:.1f} | "
                  f"{result['p50']:.1f} | {result['p95']:.1f} | {result['p99']:.1f} | {result['errors']} | "
                  f"{before:.0f} → {after:.0f} |", flush=True)
        print(f"| {model} | rnnkit predict --file (ceiling) | — | {options.requests} | {ceiling(checkpoint, used):.1f} "
              "| | | | | |")
        print(f"| {model} | start to first answer: {first_answer(checkpoint, model, inputs[0]):.2f} s | | | | | | | | |",
              flush=True)


if __name__ == "__main__":
    main()
