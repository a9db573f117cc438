"""The threads a model runs in: inference never blocks the event loop.

One ``ModelWorker`` per loaded model. By default it has one thread, so requests from
concurrent calls queue in arrival order instead of splitting the cores between them
(each model already uses every core for one request). A request cancelled while it
still waits in the queue never runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class ModelWorker:
    def __init__(self, name: str, threads: int = 1):
        if threads < 1:
            raise ValueError("a model worker needs at least one thread")
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    def submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Queue ``fn``; cancelling the returned future drops it if it has not started."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.submit(fn, *args, **kwargs)

    def close(self) -> None:
        """Drop queued requests; the one running (if any) finishes in the background."""
        self._executor.shutdown(wait=False, cancel_futures=True)
