"""Background writing of output files, so PNG encoding overlaps the network."""
from __future__ import annotations

import contextlib
import sys
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable


#: Python's thread switch interval while writers run. At the default 5 ms, a writer thread
#: holding the GIL stalls the thread driving the network for up to 5 ms at a time (measured:
#: a 0.06 ms piece of Python took up to 8 ms beside two PNG writers, at most 0.3 ms with 0.5 ms).
SWITCH_INTERVAL = 0.0005


class AsyncWriter:
    """Runs write calls in threads, at most ``max_pending`` queued; re-raises the first error.
    Leaving its ``with`` block on an exception still finishes the writes queued before it.

    While open it shortens Python's thread switch interval to ``SWITCH_INTERVAL`` (restored
    on close), so that the writers do not hold up the thread that feeds the GPU.
    """

    def __init__(self, workers: int = 2, max_pending: int = 64):
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ssmvos-write")
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
