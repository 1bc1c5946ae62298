"""AsyncWriter: background writes, and what reaches the disk when the writing loop fails."""
from __future__ import annotations

import threading

import pytest

from ssmvos.inference.writer import AsyncWriter


def test_an_error_in_the_block_still_finishes_the_writes_queued_before_it():
    release, done = threading.Event(), []

    def write(k: int) -> None:
        release.wait()  # the first write holds the only worker: the others wait in the queue
        done.append(k)

    with pytest.raises(RuntimeError, match="frame 4 is unreadable"):
        with AsyncWriter(workers=1) as writer:
            for k in range(4):
                writer.submit(write, k)
            threading.Timer(0.2, release.set).start()  # only once the error has left the block
            raise RuntimeError("frame 4 is unreadable")
    assert done == [0, 1, 2, 3]


def test_a_failed_write_does_not_mask_the_error_on_its_way():
    release, done = threading.Event(), []

    def fail() -> None:
        release.wait()
        raise OSError("disk full")

    with pytest.raises(KeyError):
        with AsyncWriter(workers=1) as writer:
            writer.submit(fail)
            writer.submit(done.append, 1)
            threading.Timer(0.2, release.set).start()
            raise KeyError("the first error")
    assert done == [1]  # the writes after the failed one are still made


def test_the_first_failed_write_is_raised_on_close():
    def fail() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        with AsyncWriter(workers=1) as writer:
            writer.submit(fail)
