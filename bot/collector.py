"""Pausing CPython's cycle collector around work that makes many short-lived objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cycle_collector_paused() -> Iterator[None]:
    """Pause the cycle collector for the block; resume it after (unless it was off).

    A weekly report's facts and rows, or the deadline sweep's assignments, events and
    messages, are tens or hundreds of thousands of small objects that all live until the
    work is done. The collector, counting them as they come, takes them for a growing
    heap and walks the process's objects again and again meanwhile, to find no garbage
    (none of them makes a cycle). Reference counting frees memory as usual.
    """
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()
