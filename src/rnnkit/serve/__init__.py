"""``rnnkit serve``: trained runs behind an HTTP API, and a page to try them.

    rnnkit serve --checkpoint RUN [--checkpoint RUN2 ...] [--host 127.0.0.1] [--port 8000]

Every command of a task's table that has ``records`` (predict, generate) is served at
``POST /v1/models/{id}/{command}``; its answer holds, per input, the record that
``predict --format jsonl`` prints. The pieces:

- ``endpoints``: what a served model accepts (typed request models made from the command's own
  options, the limits) and how a request becomes the command's inputs (uploads to files);
- ``batching``: one worker thread per model, gathering concurrent requests into one forward pass;
- ``app``: the FastAPI application (routes, errors as JSON, metrics, the page in ``page/``);
- ``command``: the command line, and the uvicorn server with its graceful shutdown.

This package needs the ``serve`` extra (FastAPI, uvicorn, prometheus_client); ``import rnnkit``
imports none of it, and the command line only when ``rnnkit serve`` runs.
"""
