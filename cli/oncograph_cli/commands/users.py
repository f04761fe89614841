"""``oncograph users|grants|projects ...``: API principals and their keys, project grants, controlled projects.

A key is printed once, to stdout, after its transaction has committed; it is stored only as a hash.
"""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy.orm import Session

from oncograph.access import (
    LOCAL_PRINCIPAL,
    IssuedKey,
    add_principal,
    disable_principal,
    grant,
    issue_key,
    list_grants,
    list_principals,
    project_known,
    revoke_grant,
    revoke_key,
    set_project_controlled,
)
from oncograph_cli.context import in_transaction
from oncograph_cli.output import err, out, print_json, print_result, print_rows, safe

app = typer.Typer(help="API principals (users and services) and their keys.", no_args_is_help=True)
grants_app = typer.Typer(
    help="Grants: which principals may see which projects' controlled data.", no_args_is_help=True
)
projects_app = typer.Typer(help="Mark projects controlled (visible only with a grant).", no_args_is_help=True)

_NOT_SHOWN_AGAIN = "store this key now: it is not stored and will not be shown again"
_JSON = typer.Option(False, "--json", help="Print JSON.")


def _show_key(issued: IssuedKey, json_out: bool, *, created: bool) -> None:
    if json_out:
        print_json(
            {
                "principal": issued.principal,
                "role": issued.role,
                "created": created,
                "prefix": issued.prefix,
                "key": issued.key,
                "note": _NOT_SHOWN_AGAIN,
            }
        )
        return
    what = (
        f"created principal {issued.principal} ({issued.role})"
        if created
        else f"new key for {issued.principal}"
    )
    err.print(f"{safe(what)}; API key {issued.prefix} ({_NOT_SHOWN_AGAIN}):")
    typer.echo(issued.key)


@app.command("add")
def add_cmd(
    name: str = typer.Argument(..., help="Principal name (letters, digits, '.', '_', '@', '-')."),
    role: str = typer.Option(..., "--role", help="viewer (reads), curator (cohorts, exports) or admin."),
    json_out: bool = _JSON,
) -> None:
    """Create a principal and print its first API key (once)."""

    def add(s: Session) -> IssuedKey:
        add_principal(s, name, role)
        return issue_key(s, name)

    issued = in_transaction(add)
    _show_key(issued, json_out, created=True)


@app.command("key")
def key_cmd(name: str = typer.Argument(..., help="Principal name."), json_out: bool = _JSON) -> None:
    """Issue another API key for a principal (printed once)."""
    issued = in_transaction(lambda s: issue_key(s, name))
    _show_key(issued, json_out, created=False)


@app.command("list")
def list_cmd(json_out: bool = _JSON) -> None:
    """Principals with their roles, key prefixes and grants."""
    print_rows(
        in_transaction(list_principals),
        json_out=json_out,
        title="principals",
        columns=("name", "role", "status", "active keys", "revoked keys", "granted projects"),
        cells=lambda p: (
            safe(p["name"]),
            safe(p["role"]),
            safe("disabled" if p["disabled_at"] else "active"),
            safe(", ".join(k["prefix"] for k in p["keys"] if k["revoked_at"] is None) or "-"),
            safe(", ".join(k["prefix"] for k in p["keys"] if k["revoked_at"] is not None) or "-"),
            safe(", ".join(g["project_id"] for g in p["grants"]) or "-"),
        ),
    )


@app.command("revoke-key")
def revoke_key_cmd(
    prefix: str = typer.Argument(..., help="The key's prefix (the part after 'og_'; see `users list`)."),
    json_out: bool = _JSON,
) -> None:
    """Revoke one API key; it stops authenticating at once."""

    def revoke(s: Session) -> dict[str, Any]:
        key = revoke_key(s, prefix)
        return {"prefix": key.prefix, "revoked_at": key.revoked_at}

    print_result(in_transaction(revoke), json_out=json_out, text=f"revoked API key {safe(prefix)}")


@app.command("disable")
def disable_cmd(name: str = typer.Argument(..., help="Principal name."), json_out: bool = _JSON) -> None:
    """Disable a principal: none of its keys authenticate any more."""

    def disable(s: Session) -> dict[str, Any]:
        principal = disable_principal(s, name)
        return {"name": principal.name, "disabled_at": principal.disabled_at}

    text = f"disabled principal {safe(name)}: its keys no longer authenticate"
    print_result(in_transaction(disable), json_out=json_out, text=text)


@grants_app.command("add")
def grant_add_cmd(
    name: str = typer.Argument(..., help="Principal name."),
    project: str = typer.Argument(..., help="GDC project id, e.g. TCGA-BRCA."),
    by: str = typer.Option(LOCAL_PRINCIPAL, "--by", help="Who granted it (recorded with the grant)."),
    json_out: bool = _JSON,
) -> None:
    """Let a principal see a project's controlled data."""
    result = in_transaction(lambda s: grant(s, name, project, by))
    if json_out:
        print_json(
            {
                "principal": result.principal,
                "project_id": result.project_id,
                "created": result.created,
                "project_known": result.project_known,
            }
        )
        return
    out.print(
        f"{safe(name)} may see controlled data of {safe(project)}"
        + ("" if result.created else " (already granted)"),
        highlight=False,
    )
    if not result.project_known:
        err.print(
            f"[yellow]warning:[/] project {safe(project)} is not in the graph (yet); check the id if you did not mean "
            "to grant ahead of ingestion",
            highlight=False,
        )


@grants_app.command("remove")
def grant_remove_cmd(
    name: str = typer.Argument(..., help="Principal name."),
    project: str = typer.Argument(..., help="GDC project id."),
    json_out: bool = _JSON,
) -> None:
    """Withdraw a principal's grant for a project."""
    in_transaction(lambda s: revoke_grant(s, name, project))
    print_result(
        {"principal": name, "project_id": project, "removed": True},
        json_out=json_out,
        text=f"{safe(name)} may no longer see controlled data of {safe(project)}",
    )


@grants_app.command("list")
def grant_list_cmd(json_out: bool = _JSON) -> None:
    """Every grant, with whether its project is marked controlled."""
    print_rows(
        in_transaction(list_grants),
        json_out=json_out,
        title="grants",
        columns=("principal", "project", "project controlled", "granted by", "granted at"),
        cells=lambda g: (
            safe(g["principal"]),
            safe(g["project_id"]),
            safe(_controlled(g["project_controlled"])),
            safe(g["granted_by"] or "-"),
            safe((g["granted_at"] or "")[:19]),
        ),
    )


def _controlled(controlled: bool | None) -> str:
    return "not in graph" if controlled is None else ("yes" if controlled else "no")


def _set_controlled(project: str, controlled: bool, json_out: bool) -> None:
    changed, known = in_transaction(
        lambda s: (set_project_controlled(s, project, controlled), project_known(s, project))
    )
    if not known:
        err.print(
            f"[yellow]warning:[/] project {safe(project)} is not in the graph (yet): the mark applies when it is "
            "ingested; check the id if you meant a project you have (`oncograph status` lists them)",
            highlight=False,
        )
    payload: dict[str, Any] = {"project_id": project, "controlled": controlled, "changed": changed}
    if json_out:
        print_json(payload)
    elif controlled:
        out.print(
            f"{safe(project)} is {'now' if changed else 'already'} controlled: its data is visible only with a grant "
            f"(`oncograph grants add NAME {project}`)",
            highlight=False,
        )
    else:
        out.print(f"{safe(project)} is {'now' if changed else 'already'} not controlled")


@projects_app.command("control")
def control_cmd(project: str = typer.Argument(..., help="GDC project id."), json_out: bool = _JSON) -> None:
    """Mark a project controlled: all its data is visible only to principals with a grant for it."""
    _set_controlled(project, True, json_out)


@projects_app.command("uncontrol")
def uncontrol_cmd(project: str = typer.Argument(..., help="GDC project id."), json_out: bool = _JSON) -> None:
    """Remove a project's controlled mark (its open-access data is visible to every principal again)."""
    _set_controlled(project, False, json_out)
