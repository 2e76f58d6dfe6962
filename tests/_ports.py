"""Free TCP ports on loopback for the servers the tests start.

A port is found by binding it and letting it go; the server started with it
binds it a moment later. With one test process the kernel's choice (port 0)
is enough. Under pytest-xdist several processes do this at once, and the
kernel may hand a port one worker has just let go of to another worker
before the first one's server binds it: each worker therefore takes ports
from a block of its own, below the kernel's ephemeral range (32768 and up
on Linux) so that outgoing connections do not take them either.
"""

from __future__ import annotations

import itertools
import os
import random
import socket

__all__ = ['free_port']

FIRST_PORT = 10000
BLOCK = 5000
# Enough for the worker counts the suite runs with (-n up to 4).
WORKER_BLOCKS = 4

_worker = os.environ.get('PYTEST_XDIST_WORKER', '')
_index = (
    int(_worker[2:]) if _worker.startswith('gw') and _worker[2:].isdigit() else None
)
_candidates = None
if _index is not None and _index < WORKER_BLOCKS:
    _start = FIRST_PORT + _index * BLOCK
    _offset = random.randrange(BLOCK)
    _candidates = itertools.cycle(
        [_start + (_offset + step) % BLOCK for step in range(BLOCK)]
    )


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(('127.0.0.1', port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    if _candidates is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(('127.0.0.1', 0))
            return sock.getsockname()[1]
    for port in itertools.islice(_candidates, BLOCK):
        if _bindable(port):
            return port
    raise RuntimeError(f'no free port in the block of worker {_worker}')
