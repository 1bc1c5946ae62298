"""Background writing of output files, so PNG encoding overlaps the network.

Two pools: threads (the default; zlib releases the GIL while it compresses, but Pillow's
filtering and the Python around each file hold it) or processes (``pool="processes"``: a
forkserver pool where the platform has one, else spawn; each task's array is pickled to the
worker, and the functions must be importable module-level functions). The files are the same
either way; figures for both are in benchmarks/README.md (``bench_evaluate_io.py``).
"""
from __future__ import annotations

import contextlib
import multiprocessing
import signal
import sys
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Callable

POOLS = ("threads", "processes")


#: Python's thread switch interval while writers run. At the default 5 ms, a writer thread
#: holding the GIL stalls the thread driving the network for up to 5 ms at a time (measured:
#: a 0.06 ms piece of Python took up to 8 ms beside two PNG writers, at most 0.3 ms with 0.5 ms).
SWITCH_INTERVAL = 0.0005


class AsyncWriter:
    """Runs write calls in threads (or processes: ``pool``), at most ``max_pending`` queued;
    re-raises the first error. Leaving its ``with`` block on an exception still finishes the
    writes queued before it.

    While open it shortens Python's thread switch interval to ``SWITCH_INTERVAL`` (restored
    on close), so that the writers do not hold up the thread that feeds the GPU.
    """

    def __init__(self, workers: int = 2, max_pending: int = 64, pool: str = "threads"):
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, not {pool!r}")
        self._shared = pool == "processes"
        self._pool: Executor = (_process_pool(max(1, workers)) if self._shared else
                                ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ssmvos-write"))
        self._pending: deque[Future] = deque()
        self._max_pending = max_pending
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL))

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        while self._pending and (self._pending[0].done() or len(self._pending) >= self._max_pending):
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(fn, *args))

    def wait(self) -> None:
        """Block until everything submitted is written (raising the first failure)."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        if self._shared:  # the process pool outlives this writer: cancel what did not start, wait for the rest
            for future in self._pending:
                future.cancel()
            for future in self._pending:
                if not future.cancelled():
                    future.exception()
            self._pending.clear()
        else:
            self._pool.shutdown(wait=True, cancel_futures=True)
        sys.setswitchinterval(self._switch_interval)

    def __enter__(self) -> "AsyncWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
            return
        # an error is already on its way: what was queued before it still reaches the disk,
        # and a failed write then does not mask that error
        try:
            while self._pending:
                with contextlib.suppress(Exception):
                    self._pending.popleft().result()
        finally:
            self._shutdown()


def _ignore_interrupts() -> None:
    """A writer process leaves Ctrl-C to the main process, which finishes or cancels its work."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


#: worker count -> the process's PNG writer processes (started once: a pool's start costs
#: seconds where the main module imports torch, see benchmarks/README.md)
_PROCESS_POOLS: dict[int, ProcessPoolExecutor] = {}


def _process_pool(workers: int) -> ProcessPoolExecutor:
    """The process's pool of ``workers`` writer processes (forkserver where the platform has
    it, else spawn: no fork of a process that holds CUDA and threads), started on first use
    and again if a worker died."""
    pool = _PROCESS_POOLS.get(workers)
    if pool is None or getattr(pool, "_broken", False):
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        pool = _PROCESS_POOLS[workers] = ProcessPoolExecutor(
            max_workers=workers, initializer=_ignore_interrupts, mp_context=multiprocessing.get_context(method))
    return pool
