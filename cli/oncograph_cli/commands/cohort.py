"""``oncograph cohort ...``: saved cohorts, frozen and reproducible, made from a filter, an id list or others.

The CLI is the local operator: it reads with :meth:`Scope.everything` and the cohorts it makes are owned by
the ``local`` admin principal (created on first use).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.table import Table
from sqlalchemy.orm import Session

from oncograph.access import Scope, ensure_local_principal
from oncograph.cohorts import saved
from oncograph.cohorts.saved import CohortInfo, Diff, Version
from oncograph.db import transaction
from oncograph.db.models import Principal
from oncograph.errors import OncographError
from oncograph.sources.gdc.portal.id_lists import read_id_file
from oncograph_cli.commands.facets import fail, load_filters
from oncograph_cli.context import store
from oncograph_cli.output import err, exit_with_error, id_column, out, print_json, print_tsv, safe

app = typer.Typer(
    help="Saved cohorts: frozen patient lists with the releases they were computed against.",
    no_args_is_help=True,
)

_JSON = typer.Option(False, "--json", help="Print JSON.")
_ID = typer.Argument(..., help="Cohort id (`oncograph cohort list`).")
_VERSION = typer.Option(None, "--version", help="Cohort version (default: the latest).")
_PAGE = 1_000
_SHOWN_IDS = 20


def _local(s: Session) -> tuple[Principal, Scope]:
    return ensure_local_principal(s), Scope.everything()


def _compact(info: CohortInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "size": info.latest.size,
        "member_hash": info.latest.member_hash,
        "releases": info.latest.releases,
    }


def _releases(releases: list[dict[str, Any]]) -> str:
    return "; ".join(f"{r['source']} {r['release']}" for r in releases) or "none"


def _ids(label: str, ids: list[str]) -> None:
    if not ids:
        return
    more = f" ... and {len(ids) - _SHOWN_IDS:,} more" if len(ids) > _SHOWN_IDS else ""
    out.print(f"{label} ({len(ids):,}): {safe(', '.join(ids[:_SHOWN_IDS]))}{more}")


def _created(info: CohortInfo, json_out: bool) -> None:
    unresolved = info.latest.details.get("unresolved") if info.kind == "ids" else None
    if json_out:
        payload = _compact(info)
        if unresolved is not None:
            payload["unresolved"] = unresolved
        print_json(payload)
        return
    out.print(
        f"created cohort [bold]{info.id}[/] {safe(repr(info.name))}: {info.latest.size:,} patients, "
        f"member hash {info.latest.member_hash[:16]}, releases {safe(_releases(info.latest.releases))}"
    )
    if unresolved:
        _ids("[yellow]ids matching no patient[/]", list(unresolved))


def _save(
    create: Callable[..., CohortInfo], *, name: str, description: str | None, shared: bool, json_out: bool
) -> None:
    """Save a new cohort owned by the local operator and report it.

    Args:
        create: one of the constructors in :mod:`oncograph.cohorts.saved` with its definition bound
            (``partial(saved.create_from_filter, filters=...)``); it gets the session, owner and scope here.
    """
    try:
        with transaction(store()) as s:
            owner, scope = _local(s)
            info = create(s, name=name, owner=owner, scope=scope, description=description, shared=shared)
    except OncographError as exc:
        fail(exc)
    _created(info, json_out)


@app.command("create")
def create_cmd(
    name: str = typer.Option(..., "--name", help="Cohort name."),
    filters: Path | None = typer.Option(None, "--filters", "-f", help="GDC filter JSON file ('-': stdin)."),
    ids: Path | None = typer.Option(
        None,
        "--ids",
        help="Patient id file: one GDC case UUID or barcode a line, a TSV/CSV with a case_id or "
        "submitter_id column (GDC portal export), or a JSON list.",
    ),
    description: str | None = typer.Option(None, "--description", help="What the cohort is for."),
    shared: bool = typer.Option(False, "--shared", help="Visible to every API user."),
    json_out: bool = _JSON,
) -> None:
    """Save a cohort from a GDC filter or from a list of patient ids, frozen as version 1."""
    if (filters is None) == (ids is None):
        exit_with_error("give exactly one of --filters FILE or --ids FILE")
    create: Callable[..., CohortInfo]
    try:
        if ids is not None:
            try:
                content = ids.read_bytes()
            except OSError as exc:
                exit_with_error(f"cannot read the id file {ids}: {exc.strerror or exc}")
            create = partial(saved.create_from_ids, ids=read_id_file(content), source=ids.name)
        else:
            create = partial(saved.create_from_filter, filters=load_filters(filters))
    except OncographError as exc:
        fail(exc)
    _save(create, name=name, description=description, shared=shared, json_out=json_out)


@app.command("list")
def list_cmd(json_out: bool = _JSON) -> None:
    """List the saved cohorts (the local operator sees everyone's)."""
    try:
        with transaction(store()) as s:
            owner, _ = _local(s)
            rows = saved.list_cohorts(s, owner, Scope.everything())
    except OncographError as exc:
        fail(exc)
    if json_out:
        print_json([c.to_json() for c in rows])
        return
    if not rows:
        err.print("no cohorts yet: `oncograph cohort create --name N --filters F.json` makes one")
        return
    table = Table(title="cohorts")
    for col in ("id", "name", "kind", "owner", "patients", "version", "shared", "created"):
        if col in ("id", "created"):
            id_column(
                table,
                col,
                justify="right" if col == "id" else "left",
                min_width=19 if col == "created" else None,
            )
        else:
            # names are the users' own words: folded onto more lines on a narrow terminal, never cut
            table.add_column(
                col, justify="right" if col in ("patients", "version") else "left", overflow="fold"
            )
    for c in rows:
        table.add_row(
            str(c.id),
            safe(c.name),
            c.kind,
            safe(c.owner),
            f"{c.latest.size:,}",
            str(c.latest.version),
            "yes" if c.shared else "",
            c.created_at.isoformat()[:19],
        )
    out.print(table)


@app.command("show")
def show_cmd(cohort_id: int = _ID, version: int | None = _VERSION, json_out: bool = _JSON) -> None:
    """A cohort's definition and one version: size, member hash, releases and scope."""
    try:
        with transaction(store()) as s:
            owner, _ = _local(s)
            info = saved.get(s, cohort_id, owner, Scope.everything())
            shown: Version = (
                saved.version(s, cohort_id, owner, version, scope=Scope.everything())
                if version is not None
                else info.latest
            )
    except OncographError as exc:
        fail(exc)
    if json_out:
        payload = info.to_json()
        payload.update(
            {
                "version": shown.to_json(),
                "size": shown.size,
                "member_hash": shown.member_hash,
                "releases": shown.releases,
            }
        )
        print_json(payload)
        return
    out.print(f"[bold]cohort {info.id}[/]: {safe(info.name)}")
    rows: list[tuple[str, str]] = [
        ("description", info.description or ""),
        ("kind", info.kind),
        ("owner", info.owner + (" (shared)" if info.shared else "")),
        ("created", info.created_at.isoformat()[:19]),
        ("versions", f"{info.versions} (showing {shown.version})"),
        ("definition", _definition(info)),
        ("patients", f"{shown.size:,}"),
        ("member hash", shown.member_hash),
        ("releases", _releases(shown.releases)),
        ("computed", shown.created_at.isoformat()[:19]),
        ("scope", "unrestricted" if shown.scope.get("unrestricted") else _scope(shown.scope)),
    ]
    table = Table(show_header=False, box=None)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        if value:
            table.add_row(key, safe(value))
    out.print(table)
    _ids("[yellow]ids matching no patient[/]", list(shown.details.get("unresolved") or []))


def _definition(info: CohortInfo) -> str:
    d = info.definition
    if info.kind == "ids":
        return f"{len(d.get('ids', [])):,} ids" + (f" from {d['source']}" if d.get("source") else "")
    if info.kind == "set":
        operands = ", ".join(f"{o['cohort']} v{o['version']}" for o in d.get("operands", []))
        return f"{d.get('op')} of {operands}"
    text = orjson.dumps(d.get("filters") or {}).decode()
    return text if len(text) <= 300 else text[:297] + "..."


def _scope(scope: dict[str, Any]) -> str:
    granted = scope.get("granted_projects") or []
    return f"{scope.get('principal')}, grants: {', '.join(granted) or 'none'}"


def _diff_summary(d: Diff) -> str:
    return (
        f"v{d.from_version} -> v{d.to_version}: +{len(d.added):,} added, -{len(d.removed):,} removed, "
        f"{d.unchanged:,} unchanged"
    )


@app.command("refresh")
def refresh_cmd(cohort_id: int = _ID, json_out: bool = _JSON) -> None:
    """Recompute a cohort against current data; a new version is saved only if members or releases changed."""
    try:
        with transaction(store()) as s:
            owner, scope = _local(s)
            info, d = saved.refresh(s, cohort_id, owner, scope)
    except OncographError as exc:
        fail(exc)
    changed = d.to_version != d.from_version
    if json_out:
        print_json(
            {**_compact(info), "version": info.latest.version, "changed": changed, "diff": d.to_json()}
        )
        return
    if not changed:
        out.print(
            f"cohort {info.id}: no change (still version {d.to_version}, {info.latest.size:,} patients)"
        )
        return
    out.print(
        f"cohort {info.id}: new version {d.to_version}, {info.latest.size:,} patients; {_diff_summary(d)}"
    )
    _ids("added", d.added)
    _ids("removed", d.removed)


@app.command("diff")
def diff_cmd(
    cohort_id: int = _ID,
    from_version: int = typer.Option(..., "--from", help="Older version."),
    to_version: int | None = typer.Option(None, "--to", help="Newer version (default: the latest)."),
    json_out: bool = _JSON,
) -> None:
    """Patients added and removed between two versions of a cohort (GDC case UUIDs)."""
    try:
        with transaction(store()) as s:
            owner, _ = _local(s)
            d = saved.diff(s, cohort_id, owner, from_version, to_version, scope=Scope.everything())
    except OncographError as exc:
        fail(exc)
    if json_out:
        print_json(d.to_json())
        return
    out.print(f"cohort {d.cohort_id} {_diff_summary(d)}")
    _ids("added", d.added)
    _ids("removed", d.removed)


@app.command("members")
def members_cmd(
    cohort_id: int = _ID,
    version: int | None = _VERSION,
    limit: int = typer.Option(100, "--limit", min=1, max=10_000, help="Members per page."),
    after: int | None = typer.Option(
        None, "--after", help="Continue after this cursor (a page's next_after)."
    ),
    all_pages: bool = typer.Option(False, "--all", help="Every member (pages through the whole version)."),
    json_out: bool = _JSON,
    tsv: bool = typer.Option(
        False, "--tsv", help="Print tab-separated values with a header (for cut, join, R)."
    ),
) -> None:
    """A version's members in a stable order: case UUID, barcode, project, site and disease type."""
    try:
        with transaction(store()) as s:
            owner, _ = _local(s)
            number = saved.version(s, cohort_id, owner, version, scope=Scope.everything()).version
            page = saved.members(
                s,
                cohort_id,
                owner,
                version_number=number,
                after=after,
                limit=_PAGE if all_pages else limit,
                scope=Scope.everything(),
            )
            rows = list(page.members)
            while all_pages and page.next_after is not None:
                page = saved.members(
                    s,
                    cohort_id,
                    owner,
                    version_number=number,
                    after=page.next_after,
                    limit=_PAGE,
                    scope=Scope.everything(),
                )
                rows.extend(page.members)
    except OncographError as exc:
        fail(exc)
    if json_out:
        print_json(
            {
                "cohort_id": cohort_id,
                "version": number,
                "total": page.total,
                "next_after": page.next_after,
                "members": rows,
            }
        )
        return
    if tsv:
        keys = ["case_id", "submitter_id", "project_id", "primary_site", "disease_type"]
        print_tsv(keys, [[m[k] for k in keys] for m in rows])
        if page.next_after is not None:
            err.print(f"more members: add --after {page.next_after}, or --all")
        return
    table = Table(title=f"cohort {cohort_id} v{number}: {len(rows):,} of {page.total:,} members")
    for col in ("case_id", "submitter_id", "project"):  # ids are never cut
        id_column(table, col, min_width=36 if col == "case_id" else None)
    for col in ("primary site", "disease type"):
        table.add_column(col, overflow="fold")
    for m in rows:
        table.add_row(
            *(
                safe(m[k] or "")
                for k in ("case_id", "submitter_id", "project_id", "primary_site", "disease_type")
            )
        )
    out.print(table)
    if page.next_after is not None:
        err.print(f"more members: add --after {page.next_after}, or --all")


def _set_command(op: str, verb: str) -> Callable[..., None]:
    def command(
        cohort_ids: list[int] = typer.Argument(..., help="Two or more cohort ids."),
        name: str = typer.Option(..., "--name", help="Name of the new cohort."),
        description: str | None = typer.Option(None, "--description", help="What the cohort is for."),
        shared: bool = typer.Option(False, "--shared", help="Visible to every API user."),
        json_out: bool = _JSON,
    ) -> None:
        create = partial(saved.set_operation, op=op, cohort_ids=cohort_ids)
        _save(create, name=name, description=description, shared=shared, json_out=json_out)

    command.__doc__ = f"Save a new cohort: {verb} (of the latest versions)."
    return command


# One vocabulary with the API and the core: union, intersection, difference; the older `intersect` and
# `subtract` still work (hidden from the help).
_UNION = _set_command("union", "the patients in any of the cohorts")
_INTERSECTION = _set_command("intersection", "the patients in every one of the cohorts")
_DIFFERENCE = _set_command("difference", "the patients of the first cohort in none of the others")
app.command("union")(_UNION)
app.command("intersection")(_INTERSECTION)
app.command("difference")(_DIFFERENCE)
app.command("intersect", hidden=True)(_INTERSECTION)
app.command("subtract", hidden=True)(_DIFFERENCE)


@app.command("delete")
def delete_cmd(cohort_id: int = _ID, json_out: bool = _JSON) -> None:
    """Delete a cohort (soft: its versions stay in the database, it is no longer listed or usable)."""
    try:
        with transaction(store()) as s:
            owner, _ = _local(s)
            saved.delete(s, cohort_id, owner, Scope.everything())
    except OncographError as exc:
        fail(exc)
    if json_out:
        print_json({"id": cohort_id, "deleted": True})
        return
    out.print(f"deleted cohort {cohort_id}")
