"""Kaplan–Meier survival on the real sample graph.

Every expectation is computed here a second way: times and events from plain per-table selects and Python
(not the module's query), curves and tests from lifelines called directly.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test, multivariate_logrank_test
from sqlalchemy import Connection, text

from oncograph.cohorts.survival import (
    EXCLUSION_REASONS,
    SURVIVAL_RULES,
    ExclusionReason,
    GroupSurvival,
    SurvivalResult,
    kaplan_meier,
    survival_data,
)

pytestmark = pytest.mark.integration


def project_patients(conn: Connection, project: str) -> list[int]:
    rows = conn.execute(
        text(
            "SELECT p.id FROM patient p JOIN project pr ON pr.id = p.project_id "
            "WHERE pr.project_id = :project ORDER BY p.id"
        ),
        {"project": project},
    )
    ids = [int(r[0]) for r in rows]
    assert ids, project
    return ids


def patient_id(conn: Connection, submitter_id: str) -> int:
    return int(
        conn.execute(
            text("SELECT id FROM patient WHERE submitter_id = :s AND retired_release_id IS NULL"),
            {"s": submitter_id},
        ).scalar_one()
    )


@dataclass(frozen=True)
class Expected:
    times: dict[int, tuple[int, bool]]
    excluded: Counter[str]


def expected_survival(conn: Connection, ids: Sequence[int]) -> Expected:
    """The survival rule written a second way: one plain select per table, the rule applied in Python."""
    wanted = sorted(set(ids))

    def rows(sql: str) -> list[Any]:
        return list(conn.execute(text(sql), {"ids": wanted}))

    current = {
        r.id for r in rows("SELECT id FROM patient WHERE id = ANY(:ids) AND retired_release_id IS NULL")
    }
    demographic = {
        r.patient_id: (r.vital_status, r.days_to_death)
        for r in rows(
            "SELECT patient_id, vital_status, days_to_death FROM demographic "
            "WHERE patient_id = ANY(:ids) AND retired_release_id IS NULL"
        )
    }
    follow: dict[int, list[int]] = {}
    for r in rows(
        "SELECT patient_id, days_to_last_follow_up AS days FROM diagnosis "
        "WHERE patient_id = ANY(:ids) AND retired_release_id IS NULL"
    ) + rows(
        "SELECT patient_id, days_to_follow_up AS days FROM follow_up "
        "WHERE patient_id = ANY(:ids) AND retired_release_id IS NULL"
    ):
        if r.days is not None:
            follow.setdefault(r.patient_id, []).append(r.days)

    times: dict[int, tuple[int, bool]] = {}
    excluded: Counter[str] = Counter()
    for pid in wanted:
        if pid not in current:
            excluded["patient_not_found"] += 1
            continue
        status, days_to_death = demographic.get(pid, (None, None))
        if status is None:
            excluded["vital_status_missing"] += 1
        elif status == "Dead":
            if days_to_death is None:
                excluded["dead_without_days_to_death"] += 1
            elif days_to_death < 0:
                excluded["negative_time"] += 1
            else:
                times[pid] = (days_to_death, True)
        elif status == "Alive":
            if pid not in follow:
                excluded["alive_without_follow_up"] += 1
            elif max(follow[pid]) < 0:
                excluded["negative_time"] += 1
            else:
                times[pid] = (max(follow[pid]), False)
        else:
            excluded["vital_status_unknown"] += 1
    return Expected(times, excluded)


def fit(expected: Expected, *, alpha: float = 0.05) -> KaplanMeierFitter:
    durations = [t for t, _ in expected.times.values()]
    events = [e for _, e in expected.times.values()]
    return KaplanMeierFitter(alpha=alpha).fit(durations, event_observed=events)


def survival_at(group: GroupSurvival, day: float) -> float:
    """The step function read off the module's curve: the last point at or before ``day``."""
    value = 1.0
    for point in group.curve:
        if point.time_days > day:
            break
        value = point.survival
    return value


def at_risk_at(group: GroupSurvival, day: int) -> int:
    return next(p.at_risk for p in group.curve if p.time_days == day)


def nonzero(excluded: Mapping[ExclusionReason, int]) -> dict[str, int]:
    return {k: v for k, v in excluded.items() if v}


def test_survival_data_follows_the_rule_on_real_patients(sample_conn: Connection) -> None:
    ids = [
        pid
        for project in ("TCGA-CHOL", "TCGA-BRCA", "TCGA-LIHC", "TCGA-LUAD", "CPTAC-3")
        for pid in project_patients(sample_conn, project)
    ]
    expected = expected_survival(sample_conn, ids)

    data = survival_data(sample_conn, ids)

    assert {r.patient_id: (r.time_days, r.event) for r in data.records} == expected.times
    assert [r.patient_id for r in data.records] == sorted(expected.times)
    assert nonzero(data.excluded) == dict(expected.excluded)
    assert set(data.excluded) == set(EXCLUSION_REASONS)
    assert len(data.records) + sum(data.excluded.values()) == len(set(ids))
    case_ids = {
        r.id: r.case_id
        for r in sample_conn.execute(
            text("SELECT id, case_id FROM patient WHERE id = ANY(:ids)"), {"ids": ids}
        )
    }
    assert all(r.case_id == case_ids[r.patient_id] for r in data.records)
    # The real data holds each kind of exclusion the rule names except a living patient without follow-up:
    assert dict(expected.excluded) == {
        "vital_status_missing": 8,  # 3 TCGA-CHOL and 5 TCGA-LUAD cases have no demographic
        "vital_status_unknown": 1,  # TCGA-DD-A11A: 'Not Reported'
        "dead_without_days_to_death": 1,  # TCGA-E9-A245
        "negative_time": 1,  # TCGA-PL-A8LV: days_to_last_follow_up -7
    }


def test_named_patients_take_the_field_their_vital_status_names(sample_conn: Connection) -> None:
    not_reported = patient_id(sample_conn, "TCGA-DD-A11A")
    dead_without_day = patient_id(sample_conn, "TCGA-E9-A245")
    negative = patient_id(sample_conn, "TCGA-PL-A8LV")
    # CPTAC-3's C3N-02695 is 'Alive' but carries a days_to_death (632): the vital status decides.
    alive_with_death_day = patient_id(sample_conn, "C3N-02695")

    for pid, reason in (
        (not_reported, "vital_status_unknown"),
        (dead_without_day, "dead_without_days_to_death"),
        (negative, "negative_time"),
    ):
        data = survival_data(sample_conn, [pid])
        assert data.records == ()
        assert nonzero(data.excluded) == {reason: 1}

    (record,) = survival_data(sample_conn, [alive_with_death_day]).records
    follow_ups = sample_conn.execute(
        text("SELECT max(days_to_follow_up) FROM follow_up WHERE patient_id = :p"),
        {"p": alive_with_death_day},
    ).scalar_one()
    assert record.event is False
    assert record.time_days == follow_ups != 632


def test_follow_up_table_can_give_the_censoring_time(sample_conn: Connection) -> None:
    # Rare in the real data: one living CPTAC-3 patient's latest follow_up is later than any of their
    # diagnoses' days_to_last_follow_up (elsewhere the two agree, or there are no follow_up rows).
    later = sample_conn.execute(
        text(
            "SELECT d.patient_id, max(f.days_to_follow_up) FROM demographic d "
            "JOIN follow_up f ON f.patient_id = d.patient_id WHERE d.vital_status = 'Alive' "
            "GROUP BY d.patient_id HAVING max(f.days_to_follow_up) > (SELECT max(x.days_to_last_follow_up) "
            "FROM diagnosis x WHERE x.patient_id = d.patient_id) ORDER BY d.patient_id"
        )
    ).all()
    assert len(later) == 1
    data = survival_data(sample_conn, [pid for pid, _ in later])
    assert [(r.patient_id, r.time_days, r.event) for r in data.records] == [(p, d, False) for p, d in later]

    # Retire that latest follow-up: the time falls back to the diagnoses' last follow-up.
    ((pid, latest),) = later
    sample_conn.execute(
        text(
            "UPDATE follow_up SET retired_release_id = (SELECT min(id) FROM source_release) "
            "WHERE patient_id = :p AND days_to_follow_up = :d"
        ),
        {"p": pid, "d": latest},
    )
    (record,) = survival_data(sample_conn, [pid]).records
    assert record.time_days < latest
    assert expected_survival(sample_conn, [pid]).times == {pid: (record.time_days, False)}


def test_kaplan_meier_equals_lifelines_on_chol_and_brca(sample_conn: Connection) -> None:
    chol_ids = project_patients(sample_conn, "TCGA-CHOL")
    brca_ids = project_patients(sample_conn, "TCGA-BRCA")
    chol, brca = expected_survival(sample_conn, chol_ids), expected_survival(sample_conn, brca_ids)

    result = kaplan_meier(sample_conn, {"TCGA-CHOL": chol_ids, "TCGA-BRCA": brca_ids})

    assert [g.name for g in result.groups] == ["TCGA-CHOL", "TCGA-BRCA"]
    for group, expected in zip(result.groups, (chol, brca), strict=True):
        kmf = fit(expected)
        events = sum(e for _, e in expected.times.values())
        assert (group.n, group.events, group.censored) == (
            len(expected.times),
            events,
            len(expected.times) - events,
        )
        assert nonzero(group.excluded) == dict(expected.excluded)
        assert group.median_days == pytest.approx(kmf.median_survival_time_)
        days = sorted({t for t, _ in expected.times.values()})
        for day in (0, 30, 365, 730, 1095, days[len(days) // 2], days[-1]):
            assert survival_at(group, day) == pytest.approx(float(kmf.predict(day)))
        table = kmf.event_table
        for day in (0, days[len(days) // 3], days[-1]):
            assert at_risk_at(group, day) == int(table.loc[day, "at_risk"])
        assert [p.time_days for p in group.curve] == [int(t) for t in kmf.survival_function_.index]
        lower = kmf.confidence_interval_.iloc[:, 0].to_numpy()
        assert [p.ci_lower for p in group.curve] == pytest.approx(list(lower))
        assert sum(p.events for p in group.curve) == group.events
        assert sum(p.censored for p in group.curve) == group.censored

    # The sample's real numbers: CHOL has 48 usable of 51 (3 without demographic), BRCA 1,034 of 1,036.
    assert (result.groups[0].n, result.groups[0].events) == (48, 22)
    assert (result.groups[1].n, result.groups[1].events) == (1034, 143)
    assert result.groups[0].median_days == 1220
    assert result.groups[1].median_days == 3959

    direct = logrank_test(
        [t for t, _ in chol.times.values()],
        [t for t, _ in brca.times.values()],
        event_observed_A=[e for _, e in chol.times.values()],
        event_observed_B=[e for _, e in brca.times.values()],
    )
    assert result.logrank_groups == ("TCGA-CHOL", "TCGA-BRCA")
    assert result.logrank_p_value == pytest.approx(direct.p_value)
    assert result.logrank_statistic == pytest.approx(direct.test_statistic)
    assert result.logrank_p_value is not None and result.logrank_p_value < 1e-6
    assert result.rules == SURVIVAL_RULES


def test_three_groups_use_the_multivariate_log_rank(sample_conn: Connection) -> None:
    groups = {p: project_patients(sample_conn, p) for p in ("TCGA-COAD", "TCGA-PAAD", "TCGA-LIHC")}
    expected = {name: expected_survival(sample_conn, ids) for name, ids in groups.items()}
    durations, labels, events = [], [], []
    for name, exp in expected.items():
        for t, e in exp.times.values():
            durations.append(t)
            labels.append(name)
            events.append(e)

    result = kaplan_meier(sample_conn, groups, alpha=0.1)

    direct = multivariate_logrank_test(durations, labels, events)
    assert result.logrank_p_value == pytest.approx(direct.p_value)
    by_name = {g.name: g for g in result.groups}
    # TCGA-COAD (11 deaths among 60) never falls to 50%: the median is None, not inf.
    assert by_name["TCGA-COAD"].median_days is None
    assert math.isinf(fit(expected["TCGA-COAD"]).median_survival_time_)
    paad = fit(expected["TCGA-PAAD"], alpha=0.1)
    upper = paad.confidence_interval_.iloc[:, 1].to_numpy()
    assert [p.ci_upper for p in by_name["TCGA-PAAD"].curve] == pytest.approx(list(upper))
    assert result.alpha == 0.1


def test_empty_groups_have_no_curve_and_no_test(sample_conn: Connection) -> None:
    chol_ids = project_patients(sample_conn, "TCGA-CHOL")
    missing = int(sample_conn.execute(text("SELECT max(id) + 1000 FROM patient")).scalar_one())

    result = kaplan_meier(sample_conn, {"CHOL": chol_ids, "nobody": [], "unknown ids": [missing, missing]})

    chol, nobody, unknown = result.groups
    assert chol.n == 48 and chol.curve
    assert (nobody.n, nobody.events, nobody.curve, nobody.median_days) == (0, 0, (), None)
    assert nonzero(nobody.excluded) == {}
    assert (unknown.n, unknown.curve) == (0, ())
    assert nonzero(unknown.excluded) == {"patient_not_found": 1}  # duplicates count once
    assert result.logrank_groups == ()
    assert result.logrank_p_value is None and result.logrank_statistic is None

    assert kaplan_meier(sample_conn, {}).groups == ()
    assert survival_data(sample_conn, []).records == ()


def test_result_serialises_to_strict_json(sample_conn: Connection) -> None:
    groups = {p: project_patients(sample_conn, p) for p in ("TCGA-CHOL", "TCGA-COAD")}
    groups["empty"] = []
    result = kaplan_meier(sample_conn, groups)

    def refuse(constant: str) -> None:
        raise AssertionError(f"non-JSON number {constant}")

    payload = json.loads(result.model_dump_json(), parse_constant=refuse)
    assert payload["groups"][1]["median_days"] is None  # COAD: not reached
    assert payload["groups"][0]["median_ci_upper_days"] is None  # CHOL: its upper bound is never reached
    assert payload["groups"][2]["curve"] == []
    assert SurvivalResult.model_validate_json(result.model_dump_json()) == result


def test_retired_rows_are_ignored(sample_conn: Connection) -> None:
    # A living TCGA-BRCA patient with two diagnoses whose last follow-ups differ.
    pid, latest_diagnosis, latest, earlier = sample_conn.execute(
        text(
            "SELECT x.patient_id, x.id, x.days_to_last_follow_up, "
            "(SELECT max(y.days_to_last_follow_up) FROM diagnosis y WHERE y.patient_id = x.patient_id "
            "AND y.id <> x.id) FROM diagnosis x JOIN demographic d ON d.patient_id = x.patient_id "
            "WHERE d.vital_status = 'Alive' AND x.days_to_last_follow_up > (SELECT max(y.days_to_last_follow_up) "
            "FROM diagnosis y WHERE y.patient_id = x.patient_id AND y.id <> x.id) "
            "AND NOT EXISTS (SELECT 1 FROM follow_up f WHERE f.patient_id = x.patient_id) "
            "ORDER BY x.patient_id LIMIT 1"
        )
    ).one()
    release = int(
        sample_conn.execute(text("SELECT min(id) FROM source_release WHERE source = 'gdc'")).scalar_one()
    )
    (before,) = survival_data(sample_conn, [pid]).records
    assert (before.time_days, before.event) == (latest, False)

    sample_conn.execute(
        text("UPDATE diagnosis SET retired_release_id = :r WHERE id = :id"),
        {"r": release, "id": latest_diagnosis},
    )
    (after,) = survival_data(sample_conn, [pid]).records
    assert after.time_days == earlier < latest
    assert expected_survival(sample_conn, [pid]).times == {pid: (earlier, False)}

    sample_conn.execute(
        text("UPDATE demographic SET retired_release_id = :r WHERE patient_id = :p"), {"r": release, "p": pid}
    )
    assert nonzero(survival_data(sample_conn, [pid]).excluded) == {"vital_status_missing": 1}

    sample_conn.execute(
        text("UPDATE patient SET retired_release_id = :r WHERE id = :p"), {"r": release, "p": pid}
    )
    assert nonzero(survival_data(sample_conn, [pid]).excluded) == {"patient_not_found": 1}


def test_living_patient_without_follow_up_is_excluded(sample_conn: Connection) -> None:
    chol_ids = project_patients(sample_conn, "TCGA-CHOL")
    alive = int(
        sample_conn.execute(
            text(
                "SELECT patient_id FROM demographic WHERE vital_status = 'Alive' AND patient_id = ANY(:ids) "
                "ORDER BY patient_id LIMIT 1"
            ),
            {"ids": chol_ids},
        ).scalar_one()
    )
    sample_conn.execute(
        text("UPDATE diagnosis SET days_to_last_follow_up = NULL WHERE patient_id = :p"), {"p": alive}
    )
    sample_conn.execute(text("DELETE FROM follow_up WHERE patient_id = :p"), {"p": alive})

    (group,) = kaplan_meier(sample_conn, {"CHOL": chol_ids}).groups

    assert nonzero(group.excluded) == {"vital_status_missing": 3, "alive_without_follow_up": 1}
    assert (group.n, group.events, group.censored) == (47, 22, 25)
    assert nonzero(group.excluded) == dict(expected_survival(sample_conn, chol_ids).excluded)


def test_rules_text_names_every_exclusion_reason() -> None:
    assert all(reason in SURVIVAL_RULES for reason in EXCLUSION_REASONS)
    assert "days_to_death" in SURVIVAL_RULES and "index date" in SURVIVAL_RULES


def test_alpha_must_be_a_probability(sample_conn: Connection) -> None:
    with pytest.raises(ValueError, match="alpha"):
        kaplan_meier(sample_conn, {"x": []}, alpha=1.0)
