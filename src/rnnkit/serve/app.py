"""The HTTP application of ``rnnkit serve``: routes, errors as JSON, metrics and the page.

    GET  /                              the page to try each model (static files in page/, no CDN, no build)
    GET  /healthz                       {"status": "ok", "models": N}
    GET  /metrics                       Prometheus text: requests, latency, inputs per forward pass
    GET  /v1/models                     {"models": [{"id", "task", "summary", "commands": {NAME: {...options}}}]}
    POST /v1/models/{id}/{command}      {"inputs": [...], "options": {...}, "stream": false} -> {"outputs": [...]}
                                        (stream: true -> server-sent events, "data: {...}" per event)
    GET  /docs, /openapi.json           the API's documentation, from the typed request models

Every error is a JSON object ``{"error": "one line: what, where, how to fix"}`` with a 4xx status
(400 unreadable JSON, 404 unknown model or command, 413 body too large, 422 a value or a limit);
a failure inside a model is a 500 with the same shape and no traceback (the server logs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import time
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException

from rnnkit.errors import UserError
from rnnkit.serve.batching import Batcher, Job
from rnnkit.serve.endpoints import Limits, Outputs, RequestError, ServedModel, renamed

log = logging.getLogger("rnnkit.serve")
PAGE = resources.files("rnnkit.serve") / "page"
DONE = object()  # the end of a stream's events
FIXED_PATHS = ("/", "/healthz", "/metrics", "/v1/models", "/docs", "/openapi.json")


class Metrics:
    """The Prometheus metrics of one application (its own registry: several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("rnnkit_requests", "HTTP requests answered", ["model", "command", "status"],
                                registry=self.registry)
        self.latency = Histogram("rnnkit_request_seconds", "Time from a request's arrival to the end of its answer",
                                 ["model", "command"], registry=self.registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
        self.batches = Histogram("rnnkit_batch_inputs", "Inputs per forward pass (requests gathered)",
                                 ["model", "command"], registry=self.registry,
                                 buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))


class Guard:
    """ASGI middleware: refuses a body over the limit (413) before anything reads it, and records every request's
    status and latency."""

    def __init__(self, app, max_body_bytes: int, metrics: Metrics, routes: dict[str, set[str]]) -> None:
        self.app, self.max_body_bytes, self.metrics, self.routes = app, max_body_bytes, metrics, routes

    def labels(self, path: str) -> tuple[str, str]:
        """(model, command) of a request for the metrics: what is not served is "unknown" (or "other"), so that
        requests for made-up paths add no series."""
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[:2] == ["v1", "models"]:
            model, command = parts[2], parts[3]
            return (model, command if command in self.routes[model] else "unknown") if model in self.routes \
                else ("unknown", "unknown")
        return "", path if path in FIXED_PATHS else "other"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]
        model, command = self.labels(scope["path"])

        async def recorded(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.metrics.requests.labels(model, command, str(status[0])).inc()
                self.metrics.latency.labels(model, command).observe(time.perf_counter() - started)

        body, size = [], 0
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return await self._too_large(scope, recorded)
        while True:  # read the body here, within the limit, then hand it on
            message = await receive()
            if message["type"] != "http.request":
                return
            body.append(message.get("body", b""))
            size += len(body[-1])
            if size > self.max_body_bytes:
                return await self._too_large(scope, recorded)
            if not message.get("more_body", False):
                break
        given = [{"type": "http.request", "body": b"".join(body), "more_body": False}]

        async def replayed():
            return given.pop() if given else await receive()

        await self.app(scope, replayed, recorded)

    async def _too_large(self, scope, send):
        response = error_response(413, f"the request body is over the server's limit of {self.max_body_bytes} bytes "
                                       "(--max-body-bytes); send fewer or smaller inputs")
        await response(scope, None, send)


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def failure(error: Exception) -> JSONResponse:
    """The answer to a request that failed: its own status where it is the request's fault, else a 500."""
    if isinstance(error, RequestError):
        return error_response(error.status, error.message)
    if isinstance(error, (UserError, ValueError)):
        return error_response(422, str(error))
    log.exception("a request failed inside the model", exc_info=error)
    return error_response(500, f"the model failed on this request ({type(error).__name__}: {error}); the server's "
                               "log has the details")


def validation_message(error: RequestValidationError) -> tuple[int, str]:
    first = error.errors()[0]
    if first.get("type") == "json_invalid":
        return 400, f"the body is not valid JSON ({first.get('ctx', {}).get('error', first['msg'])}); send " \
                    "{\"inputs\": [...], \"options\": {...}}"
    where = ".".join(str(part) for part in first["loc"] if part != "body") or "body"
    received = first.get("input")
    shown = json.dumps(received)[:80] if received is not None and first["type"] != "missing" else None
    return 422, f"{where}: {first['msg']}" + (f" (got {shown})" if shown is not None else "")


def build_app(models: list[ServedModel], limits: Limits, max_batch: int = 64, max_wait: float = 0.0) -> FastAPI:
    metrics = Metrics()
    batchers = {model.id: Batcher(model, max_batch, max_wait,
                                  lambda command, size, model=model: metrics.batches.labels(model.id, command).observe(size))
                for model in models}
    served = {model.id: model for model in models}
    for batcher in batchers.values():
        batcher.start()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        for batcher in batchers.values():  # after uvicorn has answered the requests in flight
            batcher.stop()

    from rnnkit import __version__

    app = FastAPI(title="rnnkit serve", version=__version__, lifespan=lifespan,
                  description="Trained rnnkit models: one endpoint per command of each model's task.")
    app.state.metrics, app.state.batchers = metrics, batchers

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        return error_response(*validation_message(error))

    @app.exception_handler(HTTPException)
    async def not_found(request: Request, error: HTTPException):
        return error_response(error.status_code, str(error.detail) if error.status_code != 404 else
                              f"no such endpoint: {request.method} {request.url.path} (see /docs)")

    @app.exception_handler(Exception)
    async def crashed(request: Request, error: Exception):
        return failure(error)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(str(PAGE / "index.html"))

    app.mount("/page", StaticFiles(directory=str(PAGE)), name="page")

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "models": len(served)}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def list_models() -> dict:
        return {"models": [model.describe() for model in served.values()]}

    def route(model: ServedModel, command: str):
        request_model = model.request_models[command]

        async def endpoint(body) -> Any:
            return await answer(model, command, body)

        endpoint.__annotations__["body"] = request_model  # a class, not a name: this module's annotations are strings

        app.post(f"/v1/models/{model.id}/{command}", response_model=Outputs, name=f"{model.id} {command}",
                 summary=f"{model.task.name} {command}: {model.commands[command].summary}",
                 tags=[model.id])(endpoint)

    for model in served.values():
        for command in model.commands:
            route(model, command)

    @app.post("/v1/models/{model_id}/{command}", include_in_schema=False)
    async def unknown(model_id: str, command: str):
        if model_id not in served:
            return error_response(404, f"no model {model_id!r}; this server has: {', '.join(served)}")
        try:
            served[model_id].command(command)  # raises: a served command has its own route
        except RequestError as error:
            return failure(error)

    async def answer(model: ServedModel, command: str, body) -> Any:
        folder = tempfile.TemporaryDirectory(prefix="rnnkit-serve-") if model.commands[command].inputs == "file" else None
        try:
            options, key = model.options(command, body.options)
            inputs, names = model.inputs(command, body.inputs, folder)
            if body.stream:
                response, folder = streamed(model, command, inputs, options, key, names, folder), None
                return response
            records = await asyncio.wrap_future(batchers[model.id].submit(Job(command, inputs, options, key)))
            # the records are JSON values already: a JSONResponse skips FastAPI's encoder, which walks every value
            return JSONResponse({"outputs": [renamed(record, names) for record in records]})
        except Exception as error:
            return failure(error)
        finally:
            if folder is not None:
                folder.cleanup()

    def streamed(model: ServedModel, command: str, inputs: list, options, key: str, names: dict, folder):
        if model.commands[command].stream is None:
            raise RequestError(422, f"stream: {model.task.name} {command} does not stream; leave stream out")
        if len(inputs) != 1:
            raise RequestError(422, f"stream: a streamed request takes one input, got {len(inputs)}")
        loop, events = asyncio.get_running_loop(), asyncio.Queue()
        job = Job(command, inputs, options, key, events=lambda event: loop.call_soon_threadsafe(events.put_nowait, event))
        batchers[model.id].submit(job).add_done_callback(lambda _: loop.call_soon_threadsafe(events.put_nowait, DONE))

        async def lines():
            try:
                while (event := await events.get()) is not DONE:
                    yield f"data: {json.dumps(renamed(event, names))}\n\n"
                if job.future.exception() is not None:
                    error = failure(job.future.exception())
                    yield f"event: error\ndata: {error.body.decode()}\n\n"
            finally:
                if folder is not None:
                    folder.cleanup()

        return StreamingResponse(lines(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    app.add_middleware(Guard, max_body_bytes=limits.max_body_bytes, metrics=metrics,
                       routes={model.id: set(model.commands) for model in models})
    return app
