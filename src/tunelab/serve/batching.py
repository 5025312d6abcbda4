"""Micro-batching: concurrent requests share one model call.

A CPU forward pass over 16 texts costs far less than 16 passes over one, so one asyncio worker
takes the first waiting request, keeps collecting until the batch holds `max_batch_size` items
or `max_wait_ms` has passed, runs the model once in a worker thread (the event loop keeps
accepting and answering requests meanwhile) and hands each request its slice of the results.

- Only requests with the same key share a call: for generation the key is the generation
  settings, so requests that differ there run in separate calls of the same round.
- A request is never split: one larger than `max_batch_size` runs alone; `max_batch_size=1`
  serves one request at a time (the benchmark's baseline).
- The queue is bounded: when `queue_size` requests wait, `submit` raises `QueueFull` at once (the
  route answers 503) rather than letting every client's latency grow without limit.
- The model is only ever called from this one worker, one call at a time, so models that are not
  thread-safe (Predictor, Generator and their tokenizers) are safe behind it.
- Each request is prepared (`encode`: validated and tokenized) on its own, on one encoding
  thread, before it is queued: a request that cannot be encoded fails alone and never joins a
  batch. Should a batched model call still fail, each of its requests is run again alone, so
  only the request that fails on its own gets the error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

RunBatch = Callable[[Hashable, list[Any]], list[Any]]
Encode = Callable[[Hashable, list[Any]], list[Any]]


class QueueFull(Exception):
    """The bounded request queue has no room; the client should retry later."""


class ServerStopping(Exception):
    """The server shut down before the request reached the model."""


@dataclass
class _Job:
    items: list[Any]
    key: Hashable
    future: asyncio.Future[list[Any]]


class MicroBatcher:
    """Collects queued requests into batches and runs `run_batch(key, items)` on each."""

    def __init__(
        self,
        run_batch: RunBatch,
        *,
        encode: Encode | None = None,
        max_batch_size: int,
        max_wait_ms: float,
        queue_size: int,
        on_queue_depth: Callable[[int], None] | None = None,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self.run_batch = run_batch
        self.encode = encode
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.queue_size = queue_size
        self.on_queue_depth = on_queue_depth
        self.on_batch = on_batch  # (items, requests) of every model call
        self._queue: asyncio.Queue[_Job] | None = None  # made in start(), on the server's loop
        self._held: _Job | None = None  # taken from the queue, but it starts the next batch
        self._task: asyncio.Task[None] | None = None
        self._encoder: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue(self.queue_size)
        self._encoder = ThreadPoolExecutor(1, thread_name_prefix="tunelab-encode")
        self._task = asyncio.create_task(self._work(), name="tunelab-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        waiting = [self._held] if self._held else []
        while self._queue is not None and not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for job in waiting:
            if not job.future.done():
                job.future.set_exception(ServerStopping("the server is shutting down"))
        if self._encoder is not None:
            self._encoder.shutdown(wait=False, cancel_futures=True)
        self._held, self._task, self._queue, self._encoder = None, None, None, None

    def depth(self) -> int:
        """Requests waiting for the model (not counting the batch it is running)."""
        queued = self._queue.qsize() if self._queue is not None else 0
        return queued + (self._held is not None)

    def full(self) -> bool:
        """No room in the queue: a request now would get QueueFull."""
        return self._queue is not None and self._queue.full()

    async def submit(self, items: list[Any], key: Hashable = None) -> list[Any]:
        """The model's results for `items`, in order, once a batch holding them has run."""
        return await self.enqueue(await self.prepare(items, key), key)

    async def prepare(self, items: list[Any], key: Hashable = None) -> list[Any]:
        """`items` encoded on their own, on the encoding thread (as they are without `encode`)."""
        if self.encode is None:
            return items
        if self._encoder is None:
            raise RuntimeError("the batcher is not running; start it in the app's lifespan")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._encoder, self.encode, key, list(items))

    def enqueue(self, items: list[Any], key: Hashable = None) -> asyncio.Future[list[Any]]:
        """Queue `items` now (QueueFull at once if there is no room); the future gets the results."""
        if self._queue is None:
            raise RuntimeError("the batcher is not running; start it in the app's lifespan")
        job = _Job(items, key, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise QueueFull(f"{self.depth()} requests are already waiting") from None
        self._report_depth()
        return job.future

    async def _work(self) -> None:
        while True:
            jobs = await self._collect()
            for key in dict.fromkeys(job.key for job in jobs):
                await self._run(key, [job for job in jobs if job.key == key])

    async def _collect(self) -> list[_Job]:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        first = self._held or await self._queue.get()
        self._held = None
        jobs, size = [first], len(first.items)
        deadline = loop.time() + self.max_wait
        while size < self.max_batch_size:
            try:
                job = self._queue.get_nowait()  # what already waits joins even after the deadline
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if size + len(job.items) > self.max_batch_size:
                self._held = job
                break
            jobs.append(job)
            size += len(job.items)
        self._report_depth()
        return jobs

    async def _run(self, key: Hashable, jobs: list[_Job]) -> None:
        jobs = [job for job in jobs if not job.future.done()]  # a client that left is skipped
        if not jobs:
            return
        try:
            results = await self._call(key, [item for job in jobs for item in job.items], len(jobs))
        except Exception as exc:
            if len(jobs) == 1:
                _fail(jobs[0], exc)
                return
            for job in jobs:  # one request's failure must not be its neighbours': each alone
                if job.future.done():
                    continue
                try:
                    _succeed(job, await self._call(key, job.items, 1))
                except Exception as alone:
                    _fail(job, alone)
            return
        start = 0
        for job in jobs:
            _succeed(job, results[start : start + len(job.items)])
            start += len(job.items)

    async def _call(self, key: Hashable, items: list[Any], requests: int) -> list[Any]:
        """One model call in a worker thread (the event loop keeps serving meanwhile)."""
        if self.on_batch:
            self.on_batch(len(items), requests)
        results = await asyncio.to_thread(self.run_batch, key, items)
        if len(results) != len(items):
            raise RuntimeError(f"the model returned {len(results)} results for {len(items)}")
        return results

    def _report_depth(self) -> None:
        if self.on_queue_depth:
            self.on_queue_depth(self.depth())


def _succeed(job: _Job, results: list[Any]) -> None:
    if not job.future.done():
        job.future.set_result(results)


def _fail(job: _Job, exc: BaseException) -> None:
    if not job.future.done():
        job.future.set_exception(exc)
