"""``oncograph cohort|facets|fields`` in-process (typer's CliRunner) against a private copy of the sample graph.

Every expected number is computed a second way: plain SQL over the graph tables, Python set arithmetic over
member lists, or the bundled real GDC portal export read with ``csv``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from typer.testing import CliRunner, Result

from oncograph.db.engine import engine_for
from oncograph.settings import get_settings
from oncograph_cli.commands.facets import DEFAULT_FACETS
from oncograph_cli.main import app

pytestmark = pytest.mark.integration

LIHC_EXPORT = Path(__file__).resolve().parents[2] / (
    "data/gdc/gdc_portal_exports/gdc_clinical_TCGA-LIHC_portal_v1_2020s.tsv"
)
PROJECTS = ["TCGA-LUAD", "TCGA-COAD", "TCGA-LIHC"]
BY_PROJECT = {"op": "in", "content": {"field": "project.project_id", "value": PROJECTS}}
DEAD = {"op": "=", "content": {"field": "demographic.vital_status", "value": "Dead"}}

# Independent SQL: live patients of the projects; live patients with a live "Dead" demographic.
SQL_BY_PROJECT = (
    "SELECT p.case_id::text FROM patient p JOIN project pr ON pr.id = p.project_id "
    "WHERE p.retired_release_id IS NULL AND pr.project_id = ANY(:projects)"
)
SQL_DEAD = (
    "SELECT p.case_id::text FROM patient p WHERE p.retired_release_id IS NULL AND EXISTS (SELECT 1 FROM "
    "demographic d WHERE d.patient_id = p.id AND d.retired_release_id IS NULL AND d.vital_status = 'Dead')"
)


class Cli:
    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.tmp_path = tmp_path
        self.sql: Engine = create_engine(url)

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(app, list(args))

    def ok(self, *args: str) -> Result:
        result = self.run(*args)
        assert result.exit_code == 0, (args, result.stdout, result.stderr, result.exception)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    def fails(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 1, (args, result.stdout, result.stderr)
        # a clean exit through typer.Exit, never an escaped exception
        assert isinstance(result.exception, SystemExit), result.exception
        assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
        return result.stderr

    def write(self, name: str, payload: Any) -> str:
        path = self.tmp_path / name
        path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
        return str(path)

    def case_ids(self, sql: str, **params: Any) -> set[str]:
        with self.sql.connect() as conn:
            return {str(r[0]) for r in conn.execute(text(sql), params)}

    def members(self, cohort_id: int) -> list[str]:
        out = self.json("cohort", "members", str(cohort_id), "--all")
        return [m["case_id"] for m in out["members"]]


@pytest.fixture()
def cli(clone_sample: Callable[[], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    url = clone_sample()
    monkeypatch.setenv("ONCOGRAPH_DATABASE_URL", url)
    monkeypatch.setenv("ONCOGRAPH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    c = Cli(url, tmp_path)
    try:
        yield c
    finally:
        c.sql.dispose()
        engine_for(url).dispose()
        get_settings.cache_clear()


def _hash(case_ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(case_ids)).encode()).hexdigest()


def test_cohorts_from_filters_and_ids_and_set_operations(cli: Cli) -> None:
    # -- from a filter file
    by_project = cli.case_ids(SQL_BY_PROJECT, projects=PROJECTS)
    made = cli.json(
        "cohort", "create", "--name", "three projects", "--filters", cli.write("a.json", BY_PROJECT)
    )
    assert set(made) == {"id", "size", "member_hash", "releases"}
    assert made["size"] == len(by_project) > 0
    assert made["member_hash"] == _hash(list(by_project))
    # the releases the members' rows were last seen in (issue 9 A6): the portal exports re-saw these
    # patients after the API harvest, IDC links them, and none of the three projects has a PDC study
    assert {r["source"] for r in made["releases"]} == {"gdc_portal", "idc"}
    a = made["id"]
    # a GDC API request body works too: its "filters" is used
    body = cli.write("b.json", {"filters": {"op": "and", "content": [DEAD]}, "size": 10})
    b = cli.json("cohort", "create", "--name", "dead", "--filters", body, "--description", "vital status")
    dead = cli.case_ids(SQL_DEAD)
    assert b["size"] == len(dead) > 0

    # -- from the real GDC portal clinical export (a TSV with a case_id column)
    with LIHC_EXPORT.open(newline="") as fh:
        exported = {row["case_id"] for row in csv.DictReader(fh, delimiter="\t")}
    known = cli.case_ids(
        "SELECT case_id::text FROM patient WHERE case_id::text = ANY(:ids)", ids=sorted(exported)
    )
    c = cli.json("cohort", "create", "--name", "LIHC export", "--ids", str(LIHC_EXPORT))
    assert c["size"] == len(known) > 0
    assert sorted(c["unresolved"]) == sorted(exported - known)
    # -- from a list of barcodes, one of them unknown
    with cli.sql.connect() as conn:
        barcodes = [
            str(r[0])
            for r in conn.execute(
                text("SELECT submitter_id FROM patient WHERE submitter_id LIKE 'TCGA-%' ORDER BY id LIMIT 7")
            )
        ]
    ids_file = cli.write("ids.txt", "\n".join([*barcodes[:4], "TCGA-ZZ-ZZZZ", *barcodes[4:]]) + "\n")
    listed = cli.json("cohort", "create", "--name", "barcodes", "--ids", ids_file)
    assert listed["size"] == 7 and listed["unresolved"] == ["TCGA-ZZ-ZZZZ"]
    human = cli.ok("cohort", "create", "--name", "barcodes again", "--ids", ids_file)
    assert "TCGA-ZZ-ZZZZ" in human.stdout and "7 patients" in human.stdout

    # -- list, show, members
    rows = cli.json("cohort", "list")
    assert [r["id"] for r in rows][:3] == [a, b["id"], c["id"]]
    assert all(r["owner"] == "local" for r in rows)
    shown = cli.json("cohort", "show", str(a), "--version", "1")
    assert (shown["id"], shown["size"], shown["member_hash"]) == (a, made["size"], made["member_hash"])
    assert shown["kind"] == "filter" and shown["definition"]["filters"] == BY_PROJECT
    assert shown["version"]["scope"]["unrestricted"] is True
    assert "three projects" in cli.ok("cohort", "show", str(a)).stdout
    members_a = cli.members(a)
    assert len(members_a) == made["size"] and set(members_a) == by_project
    page = cli.json("cohort", "members", str(a), "--limit", "10")
    assert [m["case_id"] for m in page["members"]] == members_a[:10] and page["total"] == made["size"]
    rest = cli.json("cohort", "members", str(a), "--limit", "10000", "--after", str(page["next_after"]))
    assert [m["case_id"] for m in rest["members"]] == members_a[10:] and rest["next_after"] is None

    # -- set operations over three cohorts, checked with Python sets
    sa, sb, sc = set(members_a), set(cli.members(b["id"])), set(cli.members(c["id"]))
    operands = [str(a), str(b["id"]), str(c["id"])]
    expected = {"union": sa | sb | sc, "intersect": sa & sb & sc, "subtract": sa - sb - sc}
    assert all(expected.values()), {k: len(v) for k, v in expected.items()}
    for verb, members in expected.items():
        out = cli.json("cohort", verb, *operands, "--name", verb)
        assert out["size"] == len(members), verb
        assert set(cli.members(out["id"])) == members, verb
        assert out["member_hash"] == _hash(list(members)), verb
        info = cli.json("cohort", "show", str(out["id"]))
        assert [o["cohort"] for o in info["definition"]["operands"]] == [a, b["id"], c["id"]]

    # -- refresh on unchanged data: no new version, an empty diff
    refreshed = cli.json("cohort", "refresh", str(a))
    assert refreshed["changed"] is False and refreshed["version"] == 1
    assert refreshed["member_hash"] == made["member_hash"]
    d = refreshed["diff"]
    assert (d["added_count"], d["removed_count"], d["unchanged"]) == (0, 0, made["size"])
    assert "no change" in cli.ok("cohort", "refresh", str(a)).stdout
    diff = cli.json("cohort", "diff", str(a), "--from", "1")
    assert (diff["added"], diff["removed"], diff["unchanged"]) == ([], [], made["size"])

    # -- delete
    assert cli.json("cohort", "delete", str(c["id"])) == {"id": c["id"], "deleted": True}
    assert c["id"] not in [r["id"] for r in cli.json("cohort", "list")]
    assert f"no cohort {c['id']} (`oncograph cohort list`" in cli.fails("cohort", "show", str(c["id"]))
    assert "no version 9" in cli.fails("cohort", "members", str(a), "--version", "9")


def test_bad_input_gives_clear_errors(cli: Cli) -> None:
    bad = {
        "op": "and",
        "content": [
            {"op": "in", "content": {"field": "project.projct_id", "value": ["TCGA-LUAD"]}},
            {"op": "between", "content": {"field": "primary_site", "value": "Liver"}},
        ],
    }
    path = cli.write("bad.json", bad)
    for args in (["cohort", "create", "--name", "x", "--filters", path], ["facets", "--filters", path]):
        err = cli.fails(*args)
        assert "filters.content[0].content.field: unknown field 'project.projct_id'" in err, err
        assert "did you mean" in err and "project.project_id" in err
        assert "filters.content[1].op: unknown op 'between'" in err, err
        assert "`oncograph fields` lists the fields" in err
    assert "not valid JSON" in cli.fails("facets", "--filters", cli.write("broken.json", "{ 'op': "))
    assert "facets[1]: unknown field 'nope'" in cli.fails(
        "facets", "--field", "primary_site", "--field", "nope"
    )
    assert "exactly one of --filters" in cli.fails("cohort", "create", "--name", "x")
    assert "cannot read the id file" in cli.fails("cohort", "create", "--name", "x", "--ids", "/nonexistent")
    unknown = cli.write("unknown.txt", "TCGA-ZZ-0001\nTCGA-ZZ-0002\n")
    assert "none of the 2 ids" in cli.fails("cohort", "create", "--name", "x", "--ids", unknown)
    assert "at least two cohorts" in cli.fails("cohort", "union", "1", "--name", "u")
    assert cli.json("cohort", "list") == []  # nothing half-made


def test_facets_and_fields(cli: Cli) -> None:
    path = cli.write("f.json", BY_PROJECT)
    out = cli.json(
        "facets", "--filters", path, "--field", "project.project_id", "--field", "demographic.vital_status"
    )
    with cli.sql.connect() as conn:
        per_project: dict[str, int] = dict(
            conn.execute(
                text(
                    "SELECT pr.project_id, count(*) FROM patient p JOIN project pr ON pr.id = p.project_id "
                    "WHERE p.retired_release_id IS NULL AND pr.project_id = ANY(:projects) GROUP BY 1"
                ),
                {"projects": PROJECTS},
            ).all()
        )
        vital: dict[str, int] = dict(
            conn.execute(
                text(
                    "SELECT d.vital_status, count(DISTINCT p.id) FROM patient p "
                    "JOIN project pr ON pr.id = p.project_id JOIN demographic d ON d.patient_id = p.id "
                    "WHERE p.retired_release_id IS NULL AND d.retired_release_id IS NULL "
                    "AND pr.project_id = ANY(:projects) AND d.vital_status IS NOT NULL GROUP BY 1"
                ),
                {"projects": PROJECTS},
            ).all()
        )
        everyone = conn.execute(
            text("SELECT count(*) FROM patient WHERE retired_release_id IS NULL")
        ).scalar()
    assert out["total"] == sum(per_project.values()) == len(cli.case_ids(SQL_BY_PROJECT, projects=PROJECTS))
    project, status = out["facets"]
    assert {bk["key"]: bk["count"] for bk in project["buckets"]} == per_project
    assert {bk["key"]: bk["count"] for bk in status["buckets"]} == vital
    assert status["missing"] == out["total"] - sum(vital.values())

    # no filter: every patient; the default facets; the modality matrix adds up
    full = cli.json("facets", "--matrix")
    assert full["total"] == everyone
    assert [f["field"] for f in full["facets"]] == list(DEFAULT_FACETS)
    matrix = full["modality_matrix"]
    assert matrix["total"] == everyone == sum(c["count"] for c in matrix["combinations"])
    human = cli.ok("facets", "--filters", path, "--matrix")
    assert f"{out['total']:,} patients match" in human.stdout and "modality combinations" in human.stdout

    fields = cli.json("fields")
    names = [f["field"] for f in fields]
    assert set(DEFAULT_FACETS) <= set(names)
    age = next(f for f in fields if f["field"] == "diagnoses.age_at_diagnosis")
    assert (age["type"], age["facet"]) == ("integer", "histogram")
    assert all(
        "vital_status" in f["field"] or "vital_status" in f["description"]
        for f in cli.json("fields", "vital_status")
    )


def test_people_output_on_stdout_user_text_as_itself_and_tsv(cli: Cli) -> None:
    hostile = "[bold red]boom[/] \x1b[2J\x1b]0;owned\x07"
    made = cli.json("cohort", "create", "--name", hostile, "--filters", cli.write("f.json", BY_PROJECT))
    listed = cli.ok("cohort", "list")
    assert "[bold red]boom[/]" in listed.stdout  # markup shown, not applied
    assert "\x1b" not in listed.stdout and "\x07" not in listed.stdout and "\\x1b" in listed.stdout
    assert "\x1b" not in cli.ok("cohort", "show", str(made["id"])).stdout
    # an error quoting a file's content prints it as itself too, on stderr
    leaf_file = cli.write("bad.json", {"op": "=", "content": {"field": "[bold red]x\x1b[2J", "value": 1}})
    message = cli.fails("cohort", "create", "--name", "bad", "--filters", leaf_file)
    assert "[bold red]x" in message and "\x1b" not in message
    # members as TSV: a header, then one line per member, nothing cut
    tsv = cli.ok("cohort", "members", str(made["id"]), "--all", "--tsv").stdout.splitlines()
    assert tsv[0].split("\t") == ["case_id", "submitter_id", "project_id", "primary_site", "disease_type"]
    assert sorted(line.split("\t")[0] for line in tsv[1:]) == sorted(cli.members(made["id"]))
    # ids in the table are never cut, however narrow the terminal
    narrow = CliRunner().invoke(
        app, ["cohort", "members", str(made["id"]), "--limit", "3"], env={"COLUMNS": "60"}
    )
    assert narrow.exit_code == 0
    first = cli.members(made["id"])[0]
    assert (
        first in narrow.stdout.replace("│", "").replace(" ", "").replace("\n", "")
        and "…" not in narrow.stdout
    )


def test_set_operations_take_both_vocabularies(cli: Cli) -> None:
    a = cli.json("cohort", "create", "--name", "a", "--filters", cli.write("a.json", BY_PROJECT))["id"]
    b = cli.json("cohort", "create", "--name", "b", "--filters", cli.write("b.json", DEAD))["id"]
    sizes = {
        op: cli.json("cohort", op, str(a), str(b), "--name", op)["size"]
        for op in ("intersection", "intersect", "difference", "subtract")
    }
    assert sizes["intersection"] == sizes["intersect"] > 0 and sizes["difference"] == sizes["subtract"] > 0
    help_text = cli.ok("cohort", "--help").stdout
    assert "intersection" in help_text and "difference" in help_text and "subtract" not in help_text
