"""``veomock serve`` as a process of its own, for the tests that run the command as a user does."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A loopback port nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(
    argv: Sequence[str | Path], cwd: Path, env: Mapping[str, str], check: Callable[[list[str]], None] | None = None
) -> Iterator[list[str]]:
    """Start the server, yield its start-up lines once uvicorn listens, stop it on the way out.
    ``check`` looks at the start-up lines first (a wrong start fails before the wait)."""
    proc = subprocess.Popen(
        [str(a) for a in argv], cwd=cwd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        banner = [proc.stdout.readline()]
        assert banner[0].startswith("veomock on http://"), banner[0] + proc.stderr.read()
        while not banner[-1].lstrip().startswith("control"):
            line = proc.stdout.readline()
            assert line, "".join(banner) + proc.stderr.read()  # the server exited mid-banner
            banner.append(line)
        if check is not None:
            check(banner)
        for line in proc.stderr:  # uvicorn says when it listens (log level info): no polling, no sleeping
            if "Uvicorn running on" in line:
                break
        else:
            raise AssertionError(f"veomock serve exited with {proc.wait()} before it listened")
        yield banner
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
