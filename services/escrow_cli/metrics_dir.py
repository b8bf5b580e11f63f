"""One metrics directory for the processes of ``escrow serve --workers N``.

Each uvicorn worker is a process of its own with its own counters; pointed at one directory
(prometheus_client's multi-process mode) each writes them to files there, and the process
that answers /metrics sums them all. The directory is made fresh for each run, before the
workers start (they read the variable when they import prometheus_client), so no count of an
earlier run leaks in, and it is removed when the server stops.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from escrow_core.metrics import MULTIPROCESS_DIR_ENV


@contextmanager
def shared_metrics(workers: int) -> Iterator[str | None]:
    """With more than one worker process: a fresh directory in the environment, removed on
    exit; yields it (None for a single process, whose registry is its own)."""
    if workers <= 1:
        yield None
        return
    directory = tempfile.mkdtemp(prefix="escrow-metrics-")
    previous = os.environ.get(MULTIPROCESS_DIR_ENV)
    os.environ[MULTIPROCESS_DIR_ENV] = directory
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(MULTIPROCESS_DIR_ENV, None)
        else:
            os.environ[MULTIPROCESS_DIR_ENV] = previous
        shutil.rmtree(directory, ignore_errors=True)
