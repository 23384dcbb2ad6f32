"""``rnnkit serve``: the API on tiny trained runs (in-process client), batching across requests, streaming, every
limit and bad input, graceful shutdown of a real server process, and the page in a real browser.

That each task's answers equal ``predict --format jsonl`` is checked over every task in test_every_task.py."""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from cli_helpers import rnnkit_here
from test_every_task import RUN, batch_options, task_data

from rnnkit.tasks import read_trained_run
from rnnkit.tasks.base import Command, CheckpointOptions

fastapi = pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'rnnkit[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from rnnkit.serve.app import build_app  # noqa: E402
from rnnkit.serve.batching import Batcher, Job  # noqa: E402
from rnnkit.serve.endpoints import Limits, ServedModel  # noqa: E402

SERVED = ("sst", "translate", "charlm")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("serve")
    trained = {}
    for task in SERVED:
        result = rnnkit_here("train", task, *task_data(task, folder / "data" / task), *RUN, *batch_options(task, 1),
                             "--out", folder / task)
        assert result.returncode == 0, result.stderr
        trained[task] = folder / task
    return trained


def served_models(runs: dict[str, Path], limits: Limits) -> list[ServedModel]:
    models = []
    for task, path in runs.items():
        run = read_trained_run(str(path))
        models.append(ServedModel(task, run.task, run.session("cpu"), limits))
    return models


@pytest.fixture(scope="module")
def client(runs):
    limits = Limits(max_body_bytes=4096, max_inputs=4, max_input_chars=200, max_generated=300)
    with TestClient(build_app(served_models(runs, limits), limits, max_batch=8, max_wait=0.001)) as client:
        yield client


def jsonl(*arguments) -> list[dict]:
    result = rnnkit_here(*arguments, "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


# ----------------------------------------------------------------------------- the API
def test_models_lists_each_run_with_its_served_commands_and_their_options(client):
    models = {model["id"]: model for model in client.get("/v1/models").json()["models"]}
    assert set(models) == set(SERVED)
    assert set(models["translate"]["commands"]) == {"predict"}  # evaluate reads the server's files: not served
    options = models["translate"]["commands"]["predict"]["options"]
    assert set(options) == {"beam_size", "n_best", "attention"}  # not --show-attention (a file), --file, --batch-size
    assert options["beam_size"]["type"] == "integer" and "Hypotheses kept" in options["beam_size"]["description"]
    generate = models["charlm"]["commands"]["generate"]
    assert generate["stream"] is True and "prime" not in generate["options"] and "length" in generate["options"]
    schema = client.get("/openapi.json").json()
    assert "/v1/models/translate/predict" in schema["paths"]
    assert "beam_size" in schema["components"]["schemas"]["TranslatePredictOptions"]["properties"]
    assert client.get("/healthz").json() == {"status": "ok", "models": 3}


def test_answers_are_the_records_of_predict_jsonl(client, runs):
    inputs = ["a good film", "", "a bad film ."]
    answer = client.post("/v1/models/sst/predict", json={"inputs": inputs})
    assert answer.status_code == 200
    outputs = answer.json()["outputs"]
    expected = jsonl("predict", "--checkpoint", runs["sst"], "a good film", "a bad film .")
    assert [outputs[0], outputs[2]] == expected
    assert outputs[1] == {"error": "inputs[1]: the line is empty; give a sentence to classify"}  # in its place

    options = {"beam_size": 2, "n_best": 2, "attention": True}
    outputs = client.post("/v1/models/translate/predict", json={"inputs": ["a b c"], "options": options}).json()["outputs"]
    expected = jsonl("predict", "--checkpoint", runs["translate"], "a b c", "--beam-size", "2", "--n-best", "2", "--attention")
    assert outputs == expected and "weights" in outputs[0]["attention"]


def test_generation_streams_its_pieces_in_order_and_ends_with_the_record(client, runs):
    options = {"length": 40, "temperature": 0.9, "seed": 3}
    with client.stream("POST", "/v1/models/charlm/generate",
                       json={"inputs": ["Shall I"], "options": options, "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[len("data: "):]) for line in response.iter_lines() if line.startswith("data: ")]
    pieces, final = [event["token"] for event in events[:-1]], events[-1]
    expected = jsonl("generate", "--checkpoint", runs["charlm"], "--prime", "Shall I", "--length", "40",
                     "--temperature", "0.9", "--seed", "3")[0]
    assert final == {"output": expected}
    assert pieces[0] == "Shall I" and len(pieces) == 41 and "".join(pieces) == expected["text"]
    answered = client.post("/v1/models/charlm/generate", json={"inputs": ["Shall I"], "options": options}).json()
    assert answered == {"outputs": [expected]}


@pytest.mark.parametrize("body, status, message", [
    (b'{"inputs": ["a good film"', 400, "not valid JSON"),
    (b'{"inputs": "a good film"}', 422, "inputs: Input should be a valid list"),
    (b'{"inputs": [3]}', 422, "inputs.0: Input should be a valid string"),
    (b'{"inputs": []}', 422, "inputs: List should have at least 1 item"),
    (b'{"options": {}}', 422, "inputs: Field required"),
    (b'{"inputs": ["x"], "options": {"beam_size": "2"}}', 422, "options.beam_size: Input should be a valid integer"),
    (b'{"inputs": ["x"], "options": {"bogus": 1}}', 422, "options.bogus: Extra inputs are not permitted"),
    (b'{"inputs": ["x"], "options": {"show_attention": "/tmp/a.png"}}', 422, "options.show_attention: Extra inputs"),
    (b'{"inputs": ["x"], "options": {"n_best": 5}}', 422, "at most the beam size"),
    (b'{"inputs": ["a", "b", "c", "d", "e"]}', 422, "5 inputs, more than the server's limit of 4 per request (--max-inputs)"),
    (b'{"inputs": ["' + b"a " * 101 + b'"]}', 422, "202 characters, more than the server's limit of 200 (--max-input-chars)"),
    (b'{"inputs": ["' + b"a" * 5000 + b'"]}', 413, "over the server's limit of 4096 bytes (--max-body-bytes)"),
    (b'{"inputs": ["x"], "stream": true}', 422, "does not stream"),
])
def test_bad_requests_are_4xx_json_errors_that_say_what_is_wrong(client, body, status, message):
    answer = client.post("/v1/models/translate/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error"} and message in answer.json()["error"]


def test_unknown_models_commands_and_limits_of_generation(client):
    unknown = client.post("/v1/models/nope/predict", json={"inputs": ["x"]})
    assert unknown.status_code == 404 and "no model 'nope'; this server has: sst, translate, charlm" in unknown.json()["error"]
    command = client.post("/v1/models/sst/generate", json={"inputs": ["x"]})
    assert command.status_code == 404 and "has no command 'generate'; it serves: predict" in command.json()["error"]
    long = client.post("/v1/models/charlm/generate", json={"inputs": ["x"], "options": {"length": 301}})
    assert long.status_code == 422 and "options.length: 301 is over the server's limit of 300" in long.json()["error"]
    two = client.post("/v1/models/charlm/generate", json={"inputs": ["a", "b"], "stream": True})
    assert two.status_code == 422 and "one input" in two.json()["error"]
    negative = client.post("/v1/models/charlm/generate", json={"inputs": ["x"], "options": {"length": -1}})
    assert negative.status_code == 422 and "must be >= 0" in negative.json()["error"]
    assert client.get("/v1/nothing").status_code == 404 and "error" in client.get("/v1/nothing").json()


def test_metrics_count_requests_by_status_and_batch_sizes(client):
    client.post("/v1/models/sst/predict", json={"inputs": ["a good film", "a film"]})
    client.post("/v1/models/nope/predict", json={"inputs": ["x"]})
    text = client.get("/metrics").text
    count = re.search(r'rnnkit_requests_total\{command="predict",model="sst",status="200"\} (\S+)', text)
    assert count is not None and float(count.group(1)) >= 1
    assert 'rnnkit_requests_total{command="unknown",model="unknown",status="404"}' in text  # no series per made-up id
    assert re.search(r'rnnkit_batch_inputs_bucket\{command="predict",le="2.0",model="sst"\} [1-9]', text)
    assert 'rnnkit_request_seconds_bucket' in text


# ----------------------------------------------------------------------------- batching across requests
def stub_model(records, inputs: str = "text") -> ServedModel:
    """A served model whose one command answers with ``records`` (no trained run needed)."""
    command = Command("stub", CheckpointOptions, lambda session, options: None, object, records=records, inputs=inputs)
    task = SimpleNamespace(name="stub", summary="", commands={"predict": command})
    return ServedModel("stub", task, session=None, limits=Limits())


def test_concurrent_requests_share_a_pass_and_each_gets_its_own_answer():
    passes = []

    def records(session, inputs, options, where):
        passes.append(list(inputs))
        return [{"echo": one, "where": place} for one, place in zip(inputs, where)]

    sizes = []
    batcher = Batcher(stub_model(records), max_batch=8, max_wait=0.5, observe=lambda command, size: sizes.append(size))
    jobs = [Job("predict", [f"r{number}-a", f"r{number}-b"], None, "same") for number in range(3)]
    jobs.append(Job("predict", ["other"], None, "other options"))  # cannot share their pass
    jobs += [Job("predict", [f"r{number}-a", f"r{number}-b"], None, "same") for number in range(3, 6)]
    futures = [batcher.submit(job) for job in jobs]  # queued before the worker starts: all arrive together
    batcher.start()
    answers = [future.result(timeout=10) for future in futures]
    batcher.stop()
    for job, answer in zip(jobs, answers):  # each request its own records, numbered within the request
        assert answer == [{"echo": one, "where": f"inputs[{number}]"} for number, one in enumerate(job.inputs)]
    assert sizes == [8, 1, 4]  # 4 requests of 2 (max_batch 8), the other options alone, then the 2 left
    assert passes[1] == ["other"]


def test_a_request_that_fails_inside_the_model_fails_alone():
    def records(session, inputs, options, where):
        if "boom" in inputs:
            raise RuntimeError("the model failed")
        return [{"echo": one} for one in inputs]

    batcher = Batcher(stub_model(records), max_batch=8, max_wait=0.5)
    jobs = [Job("predict", [name], None, "same") for name in ("a", "boom", "c")]
    futures = [batcher.submit(job) for job in jobs]
    batcher.start()
    assert futures[0].result(timeout=10) == [{"echo": "a"}] and futures[2].result(timeout=10) == [{"echo": "c"}]
    with pytest.raises(RuntimeError, match="the model failed"):
        futures[1].result(timeout=10)
    batcher.stop()


def test_a_failure_inside_the_model_is_a_json_500_without_traceback():
    def records(session, inputs, options, where):
        raise RuntimeError("shapes do not match")

    with TestClient(build_app([stub_model(records)], Limits()), raise_server_exceptions=False) as client:
        answer = client.post("/v1/models/stub/predict", json={"inputs": ["x"]})
    assert answer.status_code == 500
    assert answer.json() == {"error": "the model failed on this request (RuntimeError: shapes do not match); the "
                                      "server's log has the details"}


def test_an_upload_is_a_file_of_the_server_and_a_path_is_never_opened(tmp_path):
    seen = []

    def records(session, inputs, options, where):
        seen.extend((Path(path).name, Path(path).read_bytes()) for path in inputs)
        return [{"file": path, "note": f"read {path}"} for path in inputs]

    with TestClient(build_app([stub_model(records, inputs="file")], Limits())) as client:
        data = base64.b64encode(b"RIFF....").decode()
        answer = client.post("/v1/models/stub/predict", json={"inputs": [{"name": "../../my clip.wav", "data": data}]})
        assert answer.json() == {"outputs": [{"file": "../../my clip.wav", "note": "read ../../my clip.wav"}]}
        assert seen == [("my_clip.wav", b"RIFF....")]  # written under the server's own folder, its name made safe
        path = client.post("/v1/models/stub/predict", json={"inputs": [str(tmp_path / "secret.wav")]})
        assert path.status_code == 422 and "never opens a path named in a request" in path.json()["error"]
        garbled = client.post("/v1/models/stub/predict", json={"inputs": [{"name": "a.wav", "data": "***"}]})
        assert garbled.status_code == 422 and "inputs[0].data: not base64" in garbled.json()["error"]


# ----------------------------------------------------------------------------- a real server process
def start_server(*arguments) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "rnnkit", "serve", "--port", "0", *map(str, arguments)],
                               stderr=subprocess.PIPE, text=True)
    ready = select.select([process.stderr], [], [], 120)[0]  # a server that never says it listens fails, not hangs
    line = process.stderr.readline() if ready else "(nothing in 120 s)\n"
    match = re.search(r"at (http://\S+/) ", line)
    if match is None:
        process.kill()
        raise AssertionError(f"no ready line: {line}{process.stderr.read()}")
    return process, match.group(1)


def test_sigterm_answers_the_requests_in_flight_then_exits(runs):
    import httpx2  # the HTTP client pyproject.toml installs (its module is httpx2, not httpx)

    process, url = start_server("--checkpoint", runs["charlm"])
    try:
        with httpx2.Client(timeout=60) as http:
            body = {"inputs": ["Shall I"], "options": {"length": 2000, "seed": 1}, "stream": True}
            with http.stream("POST", url + "v1/models/charlm/generate", json=body) as response:
                lines = response.iter_lines()
                first = next(line for line in lines if line.startswith("data: "))
                process.send_signal(signal.SIGTERM)  # while the answer is being produced
                rest = [line for line in lines if line.startswith("data: ")]
        assert json.loads(first[6:]) == {"token": "Shall I"}
        final = json.loads(rest[-1][6:])["output"]
        assert len(rest) == 2001 and len(final["text"]) == len("Shall I") + 2000  # answered in full
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()


def test_bad_serve_options_are_one_line_errors(runs, tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    cases = [(["--checkpoint", runs["sst"], "--port", port], f"--port {port}: cannot listen there"),
             ([], "--checkpoint: name the run folder"),
             (["--checkpoint", tmp_path / "none"], "none"),
             (["--checkpoint", runs["sst"], "--checkpoint", runs["sst"]], "two runs are named 'sst'"),
             (["--checkpoint", runs["sst"], "--max-inputs", "0"], "--max-inputs: expected a positive integer")]
    for arguments, fragment in cases:
        result = rnnkit_here("serve", *arguments)
        assert result.returncode == 2 and fragment in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    taken.close()


# ----------------------------------------------------------------------------- the page, in a real browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: .ci/run installs Debian's chromium (apt-get install chromium)")
def test_the_page_in_a_real_browser(runs, tmp_path):
    """Types into the SST and translate forms of a real server's page, checks what it draws against the API, and that
    the console stays clean. RNNKIT_SCREENSHOTS=FOLDER keeps a screenshot of each view (docs/figures has them)."""
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    import httpx2  # the HTTP client pyproject.toml installs (its module is httpx2, not httpx)

    shots = Path(os.environ.get("RNNKIT_SCREENSHOTS", tmp_path))
    process, url = start_server(*[argument for task in SERVED for argument in ("--checkpoint", runs[task])])
    try:
        expected_sst = httpx2.post(url + "v1/models/sst/predict", json={"inputs": ["a good film"]}).json()["outputs"][0]
        expected_translation = httpx2.post(url + "v1/models/translate/predict",
                                          json={"inputs": ["a b c"]}).json()["outputs"][0]["translation"]
        with playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
            page = browser.new_page(viewport={"width": 1000, "height": 640})
            problems = []
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(url + "#sst")
            page.fill("[name=input]", "a good film")
            page.click("button.run")
            page.wait_for_selector(".result .label")
            assert page.inner_text(".result .label") == expected_sst["label"]
            shown = page.get_attribute(".bar.best", "data-label")
            assert shown == expected_sst["label"] and page.locator(".bar").count() == len(expected_sst["probabilities"])
            page.screenshot(path=str(shots / "serve-sst.png"))

            page.click("nav button[data-model=translate]")
            page.fill("[name=input]", "a b c")
            page.click("button.run")
            page.wait_for_selector("svg.attention")
            assert page.inner_text(".translation") == expected_translation
            assert page.locator("svg.attention rect").count() > 0
            page.screenshot(path=str(shots / "serve-translate.png"))

            page.click("nav button[data-model=charlm]")
            page.fill("[name=input]", "Shall I")
            page.fill("[name=length]", "60")
            page.click("button.run")
            page.wait_for_selector("pre.generated.done")
            assert page.inner_text("pre.generated").startswith("Shall I") and len(page.inner_text("pre.generated")) > 40
            page.screenshot(path=str(shots / "serve-charlm.png"))

            page.fill("[name=length]", "100000")  # over the server's limit: the page shows the API's message
            page.click("button.run")
            page.wait_for_selector(".output .error")
            assert "over the server's limit" in page.inner_text(".output .error")
            browser.close()
        assert problems == [] or all("422" in problem for problem in problems), problems  # the refused request only
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        finally:
            process.kill()  # still running: not left behind holding this run's output open
