"""The cohort index: the graph's cohort fields as columns in this process's memory, so that counts, member lists,
facets and the modality matrix take milliseconds at 100k patients (ADR 0010).

It is a cache of PostgreSQL, never a source of truth:

- it is keyed by the graph version (:mod:`oncograph.db.graph_version`): every read first reads the version
  in the caller's own transaction, and a version other than the one the index was built at empties it (the
  next read rebuilds what it needs from PostgreSQL through the caller's connection, and keeps it only when the
  version after the load is still the one read before). So no answer is stale once a change has committed,
  and API replicas stay stateless;
- a transaction that has changed the graph and not committed reads through SQL (the index cannot see its
  rows), as does everything the index cannot answer exactly as SQL does (:func:`columns.indexable`,
  :func:`evaluate.supported`);
- columns load lazily, field by field, on first use; the unrestricted rows are loaded and every scope's
  grants are applied per request (:func:`evaluate.scope_masks`), so one index serves every principal and a
  controlled project's counts never leak;
- answers are cached per (request, scope) until the version moves.

``ONCOGRAPH_COHORT_INDEX=false`` turns it off (every read goes to SQL); ``ONCOGRAPH_COHORT_ANSWER_CACHE=false``
keeps the index but computes every answer (benchmarks measure both).
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine

from oncograph.access import Scope
from oncograph.cohorts.fields import Field
from oncograph.cohorts.filters import Node, fields_of
from oncograph.cohorts.index.aggregate import histogram, modality_matrix, terms
from oncograph.cohorts.index.columns import (
    Column,
    Patients,
    Releases,
    indexable,
    load_column,
    load_patients,
    load_releases,
)
from oncograph.cohorts.index.evaluate import Mask, ScopeMasks, evaluate, members, scope_masks, supported
from oncograph.cohorts.results import Facet, ModalityMatrix
from oncograph.db.graph_version import read_graph_version
from oncograph.settings import get_settings

T = TypeVar("T")
_CACHE_ENTRIES = 512
_SCOPE_MASKS = 64
_enabled_override: bool | None = None
#: How reads were served since the process started: "index", or why SQL served them ("disabled",
#: "unsupported", "pending", "older snapshot", "moved"); the API's metrics and the tests read it.
OUTCOMES: Counter[str] = Counter()


_answers_override: bool | None = None


def enabled() -> bool:
    if _enabled_override is not None:
        return _enabled_override
    return get_settings().cohort_index


def answers_cached() -> bool:
    if _answers_override is not None:
        return _answers_override
    return get_settings().cohort_answer_cache


@contextmanager
def answers_uncached() -> Iterator[None]:
    """Every answer computed from the index inside the block (benchmarks)."""
    global _answers_override
    before = _answers_override
    _answers_override = False
    try:
        yield
    finally:
        _answers_override = before


@contextmanager
def disabled() -> Iterator[None]:
    """Every cohort read through SQL inside the block (tests comparing the engines; benchmarks)."""
    global _enabled_override
    before = _enabled_override
    _enabled_override = False
    try:
        yield
    finally:
        _enabled_override = before


_INDEXABLE: dict[str, bool] = {}


def _indexable(f: Field) -> bool:
    if f.name not in _INDEXABLE:
        _INDEXABLE[f.name] = indexable(f)
    return _INDEXABLE[f.name]


@dataclass(slots=True)
class _State:
    key: tuple[tuple[int, str], int] | None = None
    patients: Patients | None = None
    columns: dict[str, Column] = field(default_factory=dict)
    releases: Releases | None = None
    masks: OrderedDict[Any, ScopeMasks] = field(default_factory=OrderedDict)
    answers: OrderedDict[str, Any] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_STATES: weakref.WeakKeyDictionary[Engine, _State] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class View:
    """The index at one graph version, as one scope sees it."""

    patients: Patients
    columns: dict[str, Column]
    masks: ScopeMasks
    _state: _State

    def cohort(self, node: Node | None) -> Mask:
        return self.masks.visible & evaluate(node, self.columns, self.masks, len(self.patients.ids))

    def members(self, cohort: Mask) -> list[int]:
        return members(cohort, self.patients)

    def facet(
        self, f: Field, cohort: Mask, total: int, size: int, bins: int, interval: float | None
    ) -> Facet:
        column = self.columns[f.name]
        if f.facet == "terms":
            return terms(column, cohort, self.masks, total, size)
        return histogram(column, cohort, self.masks, total, bins, interval)

    def modality_matrix(self, cohort: Mask, known: tuple[str, ...]) -> ModalityMatrix:
        return modality_matrix(self.columns["modalities"], cohort, self.masks, known)

    def cached(self, request: dict[str, Any], compute: Callable[[], T]) -> T:
        """``compute()``'s answer to ``request`` (JSON-able), remembered until the graph version moves."""
        if not answers_cached():
            return compute()
        key = json.dumps(request, sort_keys=True, default=str)
        state = self._state
        with state.lock:
            if key in state.answers:
                state.answers.move_to_end(key)
                return state.answers[key]  # type: ignore[no-any-return]
        answer = compute()
        with state.lock:
            if state.patients is self.patients:  # not rebuilt meanwhile
                state.answers[key] = answer
                while len(state.answers) > _CACHE_ENTRIES:
                    state.answers.popitem(last=False)
        return answer


def scope_key(scope: Scope) -> list[Any]:
    return [scope.unrestricted, sorted(scope.granted_projects)]


def view(conn: Connection, node: Node | None, names: Sequence[Field], scope: Scope) -> View | None:
    """The index for a read that filters with ``node`` and reads ``names``, or None when the read must go to
    SQL (index off, a field or operator the index cannot answer, uncommitted graph changes in this transaction,
    or the graph moved while the index was being built)."""
    if not enabled():
        OUTCOMES["disabled"] += 1
        return None
    wanted = {f.name: f for f in [*fields_of(node), *names]}
    if not supported(node) or not all(_indexable(f) for f in wanted.values()):
        OUTCOMES["unsupported"] += 1
        return None
    state = _ready(conn, list(wanted.values()), releases=False)
    if state is None:
        return None
    with state.lock:
        assert state.patients is not None
        masks_key = json.dumps(scope_key(scope))
        masks = state.masks.get(masks_key)
        if masks is None:
            masks = scope_masks(state.patients, scope)
            state.masks[masks_key] = masks
            while len(state.masks) > _SCOPE_MASKS:
                state.masks.popitem(last=False)
        OUTCOMES["index"] += 1
        return View(state.patients, {n: state.columns[n] for n in wanted}, masks, state)


def member_facts(conn: Connection, ids: Sequence[int]) -> tuple[str, list[int]] | None:
    """The member hash (:func:`oncograph.cohorts.saved.member_hash`) and the release ids of the rows of these
    patients (all live), or None when SQL must compute them (see :func:`view`; a patient not live)."""
    if not enabled():
        return None
    state = _ready(conn, [], releases=True)
    if state is None:
        return None
    patients, releases = state.patients, state.releases
    assert patients is not None and releases is not None
    wanted = np.asarray(ids, np.int64)
    at, live = patients.positions(wanted)
    if not live.all():
        return None
    chosen = np.zeros(len(patients.ids), np.bool_)
    chosen[at] = True
    digest = _lines_digest(patients.case_ids[patients.case_order[chosen[patients.case_order]]])
    return digest, releases.of(chosen)


def _lines_digest(values: NDArray[np.bytes_]) -> str:
    """SHA-256 (hex) of the non-empty values joined by newlines, in the order given. Values that all fill the
    array's width (case UUIDs) are joined by numpy, the rest by Python."""
    values = values[values != b""]
    width = values.dtype.itemsize
    if not len(values) or not width:
        return hashlib.sha256(b"").hexdigest()
    grid = values.view(np.uint8).reshape(len(values), width)
    if not grid[:, -1].all():
        return hashlib.sha256(b"\n".join(values.tolist())).hexdigest()
    lines = np.empty((len(values), width + 1), np.uint8)
    lines[:, :width] = grid
    lines[:, width] = ord("\n")
    return hashlib.sha256(lines.tobytes()[:-1]).hexdigest()


def _ready(conn: Connection, fields: list[Field], *, releases: bool) -> _State | None:
    """The engine's index state at the caller's graph version with ``fields`` (and the releases) loaded."""
    current = read_graph_version(conn)
    if current.pending:
        OUTCOMES["pending"] += 1
        return None
    key = (current.database, current.version)
    with _STATES_LOCK:
        state = _STATES.setdefault(conn.engine, _State())
    with state.lock:
        if state.key != key:
            if state.key is not None and state.key[0] == key[0] and state.key[1] > key[1]:
                OUTCOMES["older snapshot"] += 1
                return None  # SQL answers it
            state.key, state.patients, state.columns, state.releases = key, None, {}, None
            state.masks.clear()
            state.answers.clear()
        missing = [f for f in fields if f.name not in state.columns]
        need_releases = releases and state.releases is None
        if (state.patients is None or missing or need_releases) and not _load(
            conn, state, key, missing, need_releases
        ):
            OUTCOMES["moved"] += 1
            return None
        return state


def _load(
    conn: Connection, state: _State, key: tuple[tuple[int, str], int], fields: list[Field], releases: bool
) -> bool:
    """Load the patients (when not loaded), ``fields`` and the releases through the caller's connection (a
    second connection from the pool could wait forever behind requests that hold the pool and wait for this
    load); False (and nothing kept) unless the graph version after the load is still ``key``: every graph
    commit moves the version, so an unchanged version means every statement of the load read one state."""
    patients = state.patients or load_patients(conn)
    loaded = {f.name: load_column(conn, f, patients) for f in fields}
    release_facts = load_releases(conn, patients) if releases else state.releases
    seen = read_graph_version(conn)
    if (seen.database, seen.version) != key or seen.pending:
        state.key, state.patients, state.columns, state.releases = None, None, {}, None
        return False
    state.patients = patients
    state.columns.update(loaded)
    state.releases = release_facts
    return True


def forget(engine: Engine) -> None:
    """Drop the index of ``engine`` (tests; a process that knows it will not read again)."""
    with _STATES_LOCK:
        _STATES.pop(engine, None)


__all__ = ["OUTCOMES", "View", "answers_uncached", "disabled", "enabled", "forget", "member_facts", "view"]
