"""Work computed one item ahead on a worker thread, so that the client's CPU overlaps the database's.

Ingest maps and encodes batch n + 1 while batch n is written (:mod:`oncograph.ingest.service`); an export reads
the next block of a COPY stream while the last one is converted and written (:mod:`oncograph.export.vectors`).
"""

from __future__ import annotations

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
_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.0


@contextmanager
def _prompt_switches() -> Iterator[None]:
    """Switch threads every :data:`READ_AHEAD_SWITCH_S` while any read-ahead runs. The writing thread waits
    on PostgreSQL with the GIL released; when an answer comes it must get the GIL back from the busy worker,
    which the interpreter forces only after the switch interval: at 5 ms that was ~1 s of a 5,000-case
    portal import (a few hand-offs per statement). Process-wide (restored when the last read-ahead ends)."""
    global _switch_users, _switch_saved
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_saved, READ_AHEAD_SWITCH_S))
        _switch_users += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_saved)


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
        _prompt_switches(),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool,
    ):
        pending = pool.submit(step)
        while (result := pending.result()) is not end:
            pending = pool.submit(step)
            yield result
