"""Batching across requests: one worker thread per served model gathers concurrent requests into one forward pass.

    requests ──► queue ──► worker: take the first job; add the queued jobs of the same command and options (those
                                   that arrived during the last pass; and for up to --max-wait-ms, those arriving
                                   now), while the inputs stay within --max-batch
                           ──► command.records(session, all their inputs, options)   (grouped by length inside,
                                                                                     as 'rnnkit predict' does)
                           ──► each job gets its own slice of the records

Jobs that cannot share a pass (another command, other options) wait their turn, in order. A
streamed job runs alone. If a pass fails, its jobs are run again one at a time, so that the
request that fails fails alone and the others are answered. The worker is the only thread that
uses the model (no locks), under ``torch.inference_mode``.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

import torch

from rnnkit.serve.endpoints import ServedModel

STOP = object()  # put on the queue by ``stop``: the worker ends after the jobs queued before it


@dataclass
class Job:
    command: str
    inputs: list
    options: object  # the command's options dataclass
    key: str  # equal for equal options: jobs with the same command and key can share a pass
    events: Callable[[dict], None] | None = None  # a streamed job: called with each event, from the worker thread
    future: Future = field(default_factory=Future)  # the records (a streamed job: None), or the exception


class Batcher:
    def __init__(self, served: ServedModel, max_batch: int, max_wait: float,
                 observe: Callable[[str, int], None] = lambda command, size: None) -> None:
        self.served, self.max_batch, self.max_wait, self.observe = served, max_batch, max_wait, observe
        self.queue: queue.Queue = queue.Queue()
        self.waiting: collections.deque = collections.deque()  # taken from the queue, not compatible with a pass
        self.thread = threading.Thread(target=self._work, name=f"rnnkit-serve-{served.id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Answer the jobs already queued, then end the worker."""
        self.queue.put(STOP)
        self.thread.join()

    def submit(self, job: Job) -> Future:
        self.queue.put(job)
        return job.future

    # ----------------------------------------------------------------- the worker
    def _work(self) -> None:
        with torch.inference_mode():
            while True:
                job = self.waiting.popleft() if self.waiting else self.queue.get()
                if job is STOP:
                    return
                if job.events is not None:
                    self._stream(job)
                else:
                    self._answer(self._gathered(job))

    def _gathered(self, first: Job) -> list[Job]:
        """``first`` and the jobs that can share its pass: those already waiting, then those arriving within
        max_wait."""
        group, size = [first], len(first.inputs)

        def fits(job) -> bool:
            return (job is not STOP and job.events is None and job.command == first.command and job.key == first.key
                    and size + len(job.inputs) <= self.max_batch)

        for job in list(self.waiting):
            if fits(job):  # checked as the size grows
                self.waiting.remove(job)
                group.append(job)
                size += len(job.inputs)
        deadline = time.monotonic() + self.max_wait
        while size < self.max_batch:
            left = deadline - time.monotonic()
            try:  # what arrived during the last pass joins at once; what arrives now, until the deadline
                job = self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait()
            except queue.Empty:
                break
            if fits(job):
                group.append(job)
                size += len(job.inputs)
            else:
                self.waiting.append(job)
                if job is STOP:
                    break
        return group

    def _answer(self, group: list[Job]) -> None:
        first = group[0]
        inputs = [one for job in group for one in job.inputs]
        where = [f"inputs[{number}]" for job in group for number in range(len(job.inputs))]
        try:
            records = self.served.commands[first.command].records(self.served.session, inputs, first.options, where)
        except Exception as error:
            if len(group) == 1:
                first.future.set_exception(error)
            else:
                for job in group:  # one at a time: the request that fails fails alone
                    self._answer([job])
            return
        self.observe(first.command, len(inputs))
        start = 0
        for job in group:
            job.future.set_result(records[start : start + len(job.inputs)])
            start += len(job.inputs)

    def _stream(self, job: Job) -> None:
        try:
            for event in self.served.commands[job.command].stream(self.served.session, job.inputs[0], job.options):
                job.events(event)
        except Exception as error:
            job.future.set_exception(error)
        else:
            job.future.set_result(None)
        self.observe(job.command, 1)
