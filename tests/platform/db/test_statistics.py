"""The planner's row estimate for a fresh cohort version, and the ANALYZE that corrects it (a real server)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import sessionmaker

from oncograph.access import Scope
from oncograph.cohorts import saved
from oncograph.db.models import Principal
from oncograph.db.statistics import analyze_if_underestimated, estimated_rows

EVERYTHING = Scope.everything()


def test_a_fresh_version_estimated_at_one_row_is_analyzed(clone_sample: Callable[[], str]) -> None:
    engine = create_engine(clone_sample())
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    try:
        with factory.begin() as s:
            owner = Principal(name="planner", role="curator")
            s.add(owner)
            s.flush()
            first = saved.create_from_filter(s, name="all", filters={}, owner=owner, scope=EVERYTHING)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE cohort_member"))  # every version known: an unknown one gets 1 row
        with factory.begin() as s:
            owner = s.get(Principal, owner.id)
            assert owner is not None
            second = saved.create_from_filter(s, name="again", filters={}, owner=owner, scope=EVERYTHING)
        size = second.latest.size
        version_id = _version_id(engine, second.id)
        assert size > 1000 and first.latest.size == size
        assert estimated_rows(engine, "cohort_member", "cohort_version_id", version_id) < size / 10

        assert analyze_if_underestimated(engine, "cohort_member", "cohort_version_id", version_id, size)
        after = estimated_rows(engine, "cohort_member", "cohort_version_id", version_id)
        assert size / 2 <= after <= size * 2
        # estimated well now: nothing to do
        assert not analyze_if_underestimated(engine, "cohort_member", "cohort_version_id", version_id, size)
    finally:
        engine.dispose()


def _version_id(engine: Engine, cohort_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT id FROM cohort_version WHERE cohort_id = :c ORDER BY version DESC LIMIT 1"),
                {"c": cohort_id},
            ).scalar_one()
        )
