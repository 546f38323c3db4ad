"""A real ``redis-server`` for tests and benchmarks: on a free loopback port, its files in a directory."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.processes import free_port


@contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """``redis://127.0.0.1:PORT/0`` of a fresh server, until the block ends."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: make test installs it (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--loglevel",
            "notice",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # it says when it listens: no polling, no sleeping
            seen.append(line)
            if b"Ready to accept connections" in line:
                break
        else:
            raise RuntimeError(f"redis-server did not start: {b''.join(seen)!r}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
