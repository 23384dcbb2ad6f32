"""Load test of ``rnnkit serve`` on this machine (loopback only, bounded in requests and time).

    python benchmarks/serve_load.py --checkpoint runs/sst-... --inputs sst.txt \
        --checkpoint runs/translate-... --inputs multi30k.txt [--requests 2000] [--concurrency 1 8 32 128]

For each model: a fresh ``rnnkit serve`` process per concurrency level, REQUESTS requests of one
input each (the inputs' lines in turn) sent by CONCURRENCY clients at once; throughput,
p50/p95/p99 latency, errors, and the server's resident memory before and after. At concurrency
32 the same server with batching off (--max-batch 1) too, and 'rnnkit predict --file' on the same
inputs (the ceiling: one process, batches of 256, no HTTP). Also the time from starting 'rnnkit
serve' to the first answered request. Prints a Markdown table.

The clients run in this process (asyncio, httpx) on the same cores as the server: the numbers are
what one machine does with both, as the ratio between batching on and off is measured in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx


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


async def load(url: str, model: str, inputs: list[str], requests: int, concurrency: int) -> dict:
    latencies, errors, next_request = [], 0, iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def worker():
            nonlocal errors
            for number in next_request:
                sent = time.perf_counter()
                answer = await client.post(f"v1/models/{model}/predict", json={"inputs": [inputs[number % len(inputs)]]})
                latencies.append(time.perf_counter() - sent)
                if answer.status_code != 200 or "error" in answer.json()["outputs"][0]:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    cut = statistics.quantiles(latencies, n=100)
    return {"throughput": requests / wall, "p50": cut[49] * 1000, "p95": cut[94] * 1000, "p99": cut[98] * 1000,
            "errors": errors, "wall": wall}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", required=True)
    parser.add_argument("--inputs", action="append", required=True, help="one input per line, for each --checkpoint")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    options = parser.parse_args()
    print("| model | server | concurrency | requests/s | p50 ms | p95 ms | p99 ms | errors | RSS before → after MiB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for checkpoint, inputs_path in zip(options.checkpoint, options.inputs):
        model = Path(checkpoint).resolve().name
        inputs = [line for line in Path(inputs_path).read_text(encoding="utf-8").splitlines() if line.strip()]
        used = Path(f"/tmp/serve-load-{model}.txt")
        used.write_text("\n".join(inputs[number % len(inputs)] for number in range(options.requests)) + "\n")
        runs = [("batching", concurrency, ()) for concurrency in options.concurrency]
        if 32 in options.concurrency:
            runs.append(("batching off (--max-batch 1)", 32, ("--max-batch", "1")))
        for server, concurrency, extra in runs:
            process, url, _ = start_server(checkpoint, *extra)
            try:
                asyncio.run(load(url, model, inputs, min(100, options.requests), concurrency))  # warm-up
                before = resident_mib(process)
                result = asyncio.run(load(url, model, inputs, options.requests, concurrency))
                after = resident_mib(process)
            finally:
                process.terminate()
                process.wait()
            print(f"| {model} | {server} | {concurrency} | {result['throughput']:.1f} | {result['p50']:.1f} | "
                  f"{result['p95']:.1f} | {result['p99']:.1f} | {result['errors']} | {before:.0f} → {after:.0f} |",
                  flush=True)
        print(f"| {model} | rnnkit predict --file (ceiling) | — | {ceiling(checkpoint, used):.1f} | | | | | |")
        print(f"| {model} | start to first answer: {first_answer(checkpoint, model, inputs[0]):.2f} s | | | | | | | |",
              flush=True)


if __name__ == "__main__":
    main()
