"""Schema facts are written once: every closed set (roles, run and export statuses) is one tuple in the models,
and the CHECK constraints the migrations created in the database hold exactly those values."""

from __future__ import annotations

import re
from typing import get_args

import pytest
from sqlalchemy import Engine, text

from oncograph.db.models.access import ROLES
from oncograph.db.models.exports import EXPORT_STATUSES
from oncograph.db.models.provenance import RUN_STATUSES
from oncograph.lineage.runs import RunStatus

pytestmark = pytest.mark.integration


def _check_values(engine: Engine, name: str) -> tuple[str, ...]:
    with engine.connect() as conn:
        definition = conn.execute(
            text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = :n"), {"n": name}
        ).scalar_one()
    return tuple(re.findall(r"'([^']*)'::text", definition))


@pytest.mark.parametrize(
    ("constraint", "values"),
    [("ck_principal_role", ROLES), ("ck_run_status", RUN_STATUSES), ("ck_export_status", EXPORT_STATUSES)],
)
def test_check_constraints_hold_the_models_values(
    engine: Engine, constraint: str, values: tuple[str, ...]
) -> None:
    assert sorted(_check_values(engine, constraint)) == sorted(values)


def test_the_run_status_type_is_the_tuple() -> None:
    assert get_args(RunStatus) == RUN_STATUSES


def test_a_status_outside_the_set_is_refused(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(Exception, match="ck_run_status"):
        conn.execute(text("INSERT INTO run (transform, code_version, status) VALUES ('t', '0', 'exploded')"))
