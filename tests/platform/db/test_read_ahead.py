"""The read-ahead of ingest and export (``db.read_ahead.one_ahead``): order, errors, and the interpreter settings
it tunes while it runs (the thread switch interval, the garbage collector's thresholds)."""

from __future__ import annotations

import gc
import sys
import threading

import pytest

from oncograph.db.read_ahead import READ_AHEAD_GC_THRESHOLDS, READ_AHEAD_SWITCH_S, one_ahead


def test_results_come_in_order_from_a_worker_thread() -> None:
    threads: list[str] = []

    def work(n: int) -> int:
        threads.append(threading.current_thread().name)
        return n * n

    assert list(one_ahead(range(6), work)) == [0, 1, 4, 9, 16, 25]
    assert all(name.startswith("read-ahead") for name in threads)


def test_the_interpreter_is_tuned_while_any_read_ahead_runs_and_restored_after() -> None:
    before = sys.getswitchinterval(), gc.get_threshold()
    seen: list[tuple[float, tuple[int, ...]]] = []
    outer = one_ahead(range(3), lambda n: n)
    next(outer)
    seen.append((sys.getswitchinterval(), gc.get_threshold()))
    inner = list(one_ahead(range(2), lambda n: n))  # a second read-ahead ends while the first runs
    seen.append((sys.getswitchinterval(), gc.get_threshold()))
    rest = list(outer)
    assert inner == [0, 1] and rest == [1, 2]
    tuned = tuple(max(a, b) for a, b in zip(before[1], READ_AHEAD_GC_THRESHOLDS, strict=True))
    assert seen == [(min(before[0], READ_AHEAD_SWITCH_S), tuned)] * 2
    assert (sys.getswitchinterval(), gc.get_threshold()) == before


def test_an_error_in_the_work_is_raised_in_order_and_the_settings_restored() -> None:
    before = sys.getswitchinterval(), gc.get_threshold()

    def work(n: int) -> int:
        if n == 2:
            raise ValueError("item 2 is bad")
        return n

    got: list[int] = []
    with pytest.raises(ValueError, match="item 2 is bad"):
        for value in one_ahead(range(5), work):
            got.append(value)
    assert got == [0, 1] and sys.getswitchinterval() == before[0] and gc.get_threshold() == before[1]
