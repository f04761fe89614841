"""Which parts of a document a response carries: GDC ``fields`` and ``expand``.

- ``fields=a.b,c``: only those dotted paths (the whole subtree at each path), walking into lists element by
  element; objects that end up empty are dropped.
- ``expand=g1,g2.h``: the document's top-level scalar fields plus, for each group path, the scalar fields of
  the objects at that path (``expand=diagnoses`` gives each diagnosis without its ``treatments``; add
  ``diagnoses.treatments`` for those). An expanded group that is an empty list stays as ``[]``.
- both: the ``fields`` paths plus the expanded groups (without the top-level default scalars).
- neither: the top-level scalar fields, i.e. every top-level value that is not an object and not a list of
  objects. This approximates GDC's "default fields" (for a case: ids, submitter id lists, state, dates …;
  no nested ``project``/``demographic``/``diagnoses``).

"Scalar" means null, string, number, boolean, or a list of those (``sample_ids``, ``acl``, ``[]``).
Search hits additionally carry ``id`` (added by the caller).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from oncograph.sources.gdc.mirror.filters import strip_prefix


def is_scalar(value: Any) -> bool:
    """True for null, string, number, boolean, and lists containing none of objects/lists."""
    if isinstance(value, dict):
        return False
    if isinstance(value, list):
        return not any(isinstance(v, dict | list) for v in value)
    return True


def scalar_fields(document: dict[str, Any]) -> dict[str, Any]:
    """The top-level scalar fields of ``document`` (see :func:`is_scalar`)."""
    return {k: v for k, v in document.items() if is_scalar(v)}


@dataclass(slots=True)
class _Trie:
    children: dict[str, _Trie] = field(default_factory=dict)
    scalars: bool = False
    """Include this level's scalar fields (an expanded group, or the root in default/expand mode)."""
    full: bool = False
    """Include the whole value (a ``fields`` path)."""


@dataclass(frozen=True, slots=True)
class Projection:
    """A parsed ``fields``/``expand`` pair; hashable, so it keys the serialized-document caches."""

    fields: tuple[tuple[str, ...], ...] = ()
    expand: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def parse(cls, endpoint: str, fields: Iterable[str] = (), expand: Iterable[str] = ()) -> Projection:
        """Build a projection from dotted paths; a leading endpoint name is dropped (``cases.x`` → ``x``)."""
        f = {p for p in (strip_prefix(endpoint, x) for x in fields) if p}
        e = {p for p in (strip_prefix(endpoint, x) for x in expand) if p}
        return cls(tuple(sorted(f)), tuple(sorted(e)))

    def apply(self, document: dict[str, Any]) -> dict[str, Any]:
        """The projected copy of ``document`` (containers are new; leaf values are shared, never mutated)."""
        if not self.fields and not self.expand:
            return scalar_fields(document)
        return _walk(document, self._trie())

    def _trie(self) -> _Trie:
        root = _Trie(scalars=not self.fields)
        for path in self.expand:
            node = root
            for part in path:
                node = node.children.setdefault(part, _Trie())
            node.scalars = True
        for path in self.fields:
            node = root
            for part in path:
                node = node.children.setdefault(part, _Trie())
            node.full = True
        return root


def _walk(source: dict[str, Any], node: _Trie) -> dict[str, Any]:
    out: dict[str, Any] = scalar_fields(source) if node.scalars else {}
    for key, child in node.children.items():
        if key not in source:
            continue
        value = source[key]
        if child.full:
            out[key] = value
        elif isinstance(value, dict):
            sub = _walk(value, child)
            if sub or child.scalars:
                out[key] = sub
        elif isinstance(value, list):
            items: list[Any] = []
            for item in value:
                if isinstance(item, dict):
                    sub = _walk(item, child)
                    if sub or child.scalars:
                        items.append(sub)
                elif child.scalars:
                    items.append(item)
            if items or child.scalars:
                out[key] = items
        elif child.scalars:
            out[key] = value
    return out


def nested_paths(documents: Iterable[dict[str, Any]]) -> set[str]:
    """Every dotted path at which the documents hold an object or a list of objects.

    Expanding all of them (``expand=",".join(sorted(paths))``) returns the documents unchanged, which makes
    this handy for tests and for harvesting everything a mirror holds.
    """
    found: set[str] = set()

    def visit(obj: dict[str, Any], prefix: str) -> None:
        for key, value in obj.items():
            items = [value] if isinstance(value, dict) else value if isinstance(value, list) else []
            objects = [v for v in items if isinstance(v, dict)]
            if isinstance(value, dict) or objects:
                path = f"{prefix}{key}"
                found.add(path)
                for o in objects:
                    visit(o, path + ".")

    for doc in documents:
        visit(doc, "")
    return found
