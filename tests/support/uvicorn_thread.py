"""An ASGI app served by uvicorn in a daemon thread on loopback, for the test servers
that stand in for remote services (speech APIs) in the test's own process."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass
class UvicornThread:
    """``start`` returns once uvicorn listens on ``127.0.0.1:port``; ``stop`` asks it to
    exit and joins the thread."""

    server: uvicorn.Server
    thread: threading.Thread

    @classmethod
    def start(cls, app: Any, port: int, *, log_level: str = "warning") -> UvicornThread:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level=log_level, lifespan="off"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the test server on port {port} did not start")
            time.sleep(0.01)
        return cls(server, thread)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
