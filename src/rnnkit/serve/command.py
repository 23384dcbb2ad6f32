"""``rnnkit serve``: its options, the runs loaded, and the uvicorn server.

The listening socket is bound here, before the server starts, so that a port in use is one
line and exit status 2, and ``--port 0`` picks a free port (printed in the ready line). uvicorn
shuts down gracefully on SIGTERM or Ctrl-C: it stops accepting, answers the requests in flight,
then the application's batchers answer what they hold and stop.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro

from rnnkit.errors import UserError
from rnnkit.serve.endpoints import Limits

GRACEFUL_SECONDS = 30  # how long a shutdown waits for the requests in flight


@dataclass
class ServeOptions:
    checkpoint: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """A run folder to serve (repeat the flag for several); the folder's name is the model's id."""
    host: str = "127.0.0.1"
    """Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface)."""
    port: int = 8000
    """Port to listen on (0: a free one, printed when ready)."""
    device: str = "cpu"
    """auto, cpu or cuda."""
    threads: int = 0
    """PyTorch's threads for the models' arithmetic (0: the cores this process may use)."""
    max_batch: int = 64
    """Inputs gathered from concurrent requests into one forward pass, at most (1: no batching across requests)."""
    max_wait_ms: float = 0.0
    """How long the first request of a batch waits for others to join it (0: a batch is what is queued when the model
    is free: under load, what arrived during the last pass; alone, a request does not wait)."""
    limits: Limits = field(default_factory=Limits)

    def validate(self) -> None:
        if not self.checkpoint:
            raise UserError("--checkpoint: name the run folder of a trained model (repeat the flag for several)")
        if not 0 <= self.port <= 65535:
            raise UserError(f"--port: expected 0 to 65535, got {self.port}")
        if self.threads < 0:
            raise UserError(f"--threads: expected 0 (the cores available) or more, got {self.threads}")
        if self.max_batch <= 0:
            raise UserError(f"--max-batch: expected a positive integer, got {self.max_batch}")
        if self.max_wait_ms < 0:
            raise UserError(f"--max-wait-ms: expected 0 or more, got {self.max_wait_ms}")
        self.limits.validate()
        ids = [model_id(path) for path in self.checkpoint]
        repeated = next((one for one in ids if ids.count(one) > 1), None)
        if repeated is not None:
            raise UserError(f"--checkpoint: two runs are named {repeated!r} (a model's id is its folder's name); "
                            "serve runs whose folders have different names")


def model_id(checkpoint: str) -> str:
    return Path(checkpoint).resolve().name


def listening_socket(host: str, port: int) -> socket.socket:
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        listener = socket.socket(family, kind, protocol)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
    except OSError as error:
        raise UserError(f"--host {host} --port {port}: cannot listen there ({error.strerror or error}); choose another "
                        "--port (0: any free one)") from None
    listener.listen(2048)
    return listener


def serve_command(arguments: list[str]) -> int:
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn
    except ImportError as error:
        raise UserError(f"rnnkit serve needs the serve extra ({error.name} is missing): pip install 'rnnkit[serve]'") from None
    import torch

    from rnnkit.serve.app import build_app
    from rnnkit.serve.endpoints import ServedModel
    from rnnkit.tasks import read_trained_run

    options = tyro.cli(ServeOptions, args=arguments, prog="rnnkit serve", config=(tyro.conf.OmitArgPrefixes,),
                       description="Serve trained runs over HTTP: an API per command, and a page to try them at /.")
    options.validate()
    started = time.perf_counter()
    torch.set_num_threads(options.threads or len(os.sched_getaffinity(0)))
    models = []
    for path in options.checkpoint:
        run = read_trained_run(path)
        model = ServedModel(model_id(path), run.task, run.session(options.device), options.limits)
        if not model.commands:
            raise UserError(f"--checkpoint {path}: a {run.task.name} model has no command to serve (its commands: "
                            f"{', '.join(run.task.commands)} read files of this machine); serve a run of another task")
        models.append(model)
    listener = listening_socket(options.host, options.port)
    app = build_app(models, options.limits, options.max_batch, options.max_wait_ms / 1000)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=GRACEFUL_SECONDS))
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"rnnkit serve: {len(models)} model(s) ({', '.join(model.id for model in models)}) at http://{shown}:{port}/ "
          f"(ready in {time.perf_counter() - started:.1f} s; API documentation at /docs)", file=sys.stderr, flush=True)
    # uvicorn answers SIGTERM by a graceful shutdown, then raises the signal again under the handler it found: this
    # one, so that a stop asked for is a clean exit (status 0), as a service manager expects.
    signal.signal(signal.SIGTERM, lambda number, frame: None)
    server.run(sockets=[listener])
    print("rnnkit serve: stopped, every request answered", file=sys.stderr, flush=True)
    return 0
