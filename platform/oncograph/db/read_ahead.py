"""Work computed one item ahead on a worker thread, so that the client's CPU overlaps the database's.

Ingest maps and encodes batch n + 1 while batch n is written (:mod:`oncograph.ingest.service`); an export reads
the next block of a COPY stream while the last one is converted and written (:mod:`oncograph.export.vectors`).
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Final, TypeVar

T = TypeVar("T")
U = TypeVar("U")

#: The interpreter's thread switch interval while a read-ahead runs (the default is 5 ms).
READ_AHEAD_SWITCH_S: Final = 0.0005
#: The cyclic garbage collector's thresholds while a read-ahead runs (the default is 700, 10, 10).
READ_AHEAD_GC_THRESHOLDS: Final = (50_000, 20, 10)
_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.0
_gc_saved: tuple[int, int, int] = (700, 10, 10)


@contextmanager
def _tuned_interpreter() -> Iterator[None]:
    """Switch threads every :data:`READ_AHEAD_SWITCH_S` while any read-ahead runs, and collect cyclic garbage
    less often (:data:`READ_AHEAD_GC_THRESHOLDS`). Process-wide; restored when the last read-ahead ends.

    The writing thread waits on PostgreSQL with the GIL released; when an answer comes it must get the GIL
    back from the busy worker, which the interpreter forces only after the switch interval: at 5 ms that was
    ~1 s of a 5,000-case portal import (a few hand-offs per statement). A page of 1,000 GDC cases decodes
    into ~1M objects: at the default threshold (a young collection every 700 allocations) the collector ran
    thousands of times a page, ~20% of the client's CPU in a harvest (JSON decode, mapping, encoding); at
    50,000 it runs ~70 times less often, and only cycles (rare here) wait longer to be freed."""
    global _switch_users, _switch_saved, _gc_saved
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_saved, READ_AHEAD_SWITCH_S))
            _gc_saved = gc.get_threshold()
            gc.set_threshold(*(max(a, b) for a, b in zip(_gc_saved, READ_AHEAD_GC_THRESHOLDS, strict=True)))
        _switch_users += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_saved)
                gc.set_threshold(*_gc_saved)


def one_ahead(items: Iterable[T], work: Callable[[T], U]) -> Generator[U, None, None]:
    """``work(item)`` for each item, computed one item ahead on a worker thread: while the caller writes
    result n (the driver releases the GIL while PostgreSQL works, Arrow while it encodes), the worker takes
    item n + 1 from ``items`` and works on it, so the client's CPU time overlaps the database's. Results come in order; an error in
    ``items`` or ``work`` is raised where its result would have come."""
    source = iter(items)
    end = object()

    def step() -> Any:
        for item in source:
            return work(item)
        return end

    with (
        _tuned_interpreter(),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool,
    ):
        pending = pool.submit(step)
        while (result := pending.result()) is not end:
            pending = pool.submit(step)
            yield result
