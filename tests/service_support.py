"""Shared pieces of the service tests: a directory of ids, and a real uvicorn on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from qaflow.directory import InMemoryDirectory

#: A small fostering service: the FIRO ladder's raiser, each stage's holder, a worker who
#: holds none of the ladder's roles (for the 403s) and the case system's integration account.
DIRECTORY: dict[str, Any] = {
    "people": [
        {"id": "FIRO-1", "roles": ["firo"]},
        {"id": "FIRO-2", "roles": ["firo"]},
        {"id": "FM-1", "roles": ["fostering_manager"], "team_id": "T-F"},
        {"id": "TM-1", "roles": [], "team_id": "T-F"},
        {"id": "HS-1", "roles": ["head_of_service"]},
        {"id": "AD-1", "roles": ["assistant_director"]},
        {"id": "DIR-1", "roles": ["director"]},
        {"id": "SW-1", "roles": ["worker"], "team_id": "T-F"},
        {"id": "CMS-1", "roles": ["qaflow_operator"]},
    ],
    "teams": [{"id": "T-F", "service_id": "SV-F", "manager_id": "TM-1"}],
    "services": [{"id": "SV-F", "manager_id": None, "head_of_service_id": "HS-1"}],
}


def directory() -> InMemoryDirectory:
    return InMemoryDirectory.from_mapping(DIRECTORY)


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:  # startup is real time: bounded wait, not a test clock
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
