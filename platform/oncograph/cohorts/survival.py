"""Overall survival of patient cohorts: survival times from the graph, Kaplan–Meier curves and the log-rank test.

The rule that turns graph rows into a (time, event) pair is fixed here and shipped with every result as
``SURVIVAL_RULES``, so a curve can always be read against the rule that made it:

- **Origin** is the GDC index date. Every GDC ``days_to_*`` value counts from it; for TCGA it is the date
  of initial pathologic diagnosis.
- **Event**: ``demographic.vital_status`` is ``'Dead'``; the time is ``demographic.days_to_death``.
- **Censored**: ``vital_status`` is ``'Alive'``; the time is the largest of the patient's
  ``diagnosis.days_to_last_follow_up`` and ``follow_up.days_to_follow_up`` values.
- **Excluded**, and counted by reason (``ExclusionReason``): the id is not a current patient, vital status is
  missing or neither ``'Alive'`` nor ``'Dead'`` (``'Not Reported'``, ``'Unknown'``), a dead patient has no
  ``days_to_death``, a living patient has no follow-up time, or the time is negative.

Retired rows (``retired_release_id`` set) are ignored everywhere. ``days_to_death`` of a living patient and
follow-up recorded after death are ignored: the vital status decides which field gives the time.

Callers pass patient ids that they are allowed to see; nothing here applies access rules.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, text

SURVIVAL_RULES = (
    "Overall survival. Time origin: the GDC index date (for TCGA, the date of initial diagnosis); all GDC "
    "days_to_* values are relative to it. Event: demographic.vital_status = 'Dead', time = "
    "demographic.days_to_death. Censored: vital_status = 'Alive', time = the largest of the patient's "
    "diagnosis.days_to_last_follow_up and follow_up.days_to_follow_up. Excluded (counted by reason): "
    "patient_not_found (the id is not a current patient), vital_status_missing (no demographic or no vital "
    "status), vital_status_unknown (any value other than 'Alive' or 'Dead', e.g. 'Not Reported'), "
    "dead_without_days_to_death, alive_without_follow_up, negative_time (time < 0). Retired rows are ignored."
)
"""The survival rule in words; every ``SurvivalResult`` carries it."""

ExclusionReason = Literal[
    "patient_not_found",
    "vital_status_missing",
    "vital_status_unknown",
    "dead_without_days_to_death",
    "alive_without_follow_up",
    "negative_time",
]
EXCLUSION_REASONS: tuple[ExclusionReason, ...] = get_args(ExclusionReason)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SurvivalRecord(_Frozen):
    """One usable patient: ``time_days`` from the index date to death (``event``) or last follow-up."""

    patient_id: int
    case_id: uuid.UUID
    time_days: int
    event: bool


class SurvivalData(_Frozen):
    """The usable patients of one id list, and how many ids were excluded for each reason (all reasons
    are present, most with 0)."""

    records: tuple[SurvivalRecord, ...]
    excluded: dict[ExclusionReason, int]


class CurvePoint(_Frozen):
    """One step of a Kaplan–Meier curve: the estimate from ``time_days`` on.

    ``at_risk`` counts patients still followed just before ``time_days``; ``events`` and ``censored`` happen
    at it. The confidence bounds are None where lifelines cannot give a finite one.
    """

    time_days: int
    survival: float
    ci_lower: float | None
    ci_upper: float | None
    at_risk: int
    events: int
    censored: int


class GroupSurvival(_Frozen):
    """The Kaplan–Meier estimate of one group. ``median_days`` (and its bounds) are None when not reached."""

    name: str
    n: int
    events: int
    censored: int
    excluded: dict[ExclusionReason, int]
    median_days: float | None
    median_ci_lower_days: float | None
    median_ci_upper_days: float | None
    curve: tuple[CurvePoint, ...]


class SurvivalResult(_Frozen):
    """Kaplan–Meier curves for named groups and, with two or more non-empty groups, the log-rank test
    across them (``logrank_groups`` names the groups it compared)."""

    rules: str
    alpha: float
    groups: tuple[GroupSurvival, ...]
    logrank_groups: tuple[str, ...]
    logrank_statistic: float | None
    logrank_p_value: float | None


def outcomes_sql(wanted: str) -> str:
    """``SURVIVAL_RULES`` as SQL: one row ``(id, case_id, time_days, event, excluded)`` per id of ``wanted``
    (a ``SELECT`` of distinct bigint ids named ``id``; any placeholders in it stay the caller's). Follow-up is
    aggregated per patient before the join, so a patient's many diagnoses and follow-ups never multiply its
    row. The one definition behind :func:`survival_data` and the export's survival columns."""
    return f"""
    WITH wanted AS ({wanted}), follow AS (
        SELECT patient_id, max(days) AS days
        FROM (
            SELECT patient_id, days_to_last_follow_up AS days FROM diagnosis
            WHERE retired_release_id IS NULL AND patient_id IN (SELECT id FROM wanted)
            UNION ALL
            SELECT patient_id, days_to_follow_up FROM follow_up
            WHERE retired_release_id IS NULL AND patient_id IN (SELECT id FROM wanted)
        ) AS t
        GROUP BY patient_id
    ), joined AS (
        SELECT w.id, p.id IS NOT NULL AS found, p.case_id, d.vital_status, d.days_to_death,
               f.days AS follow_up_days,
               CASE d.vital_status WHEN 'Dead' THEN d.days_to_death WHEN 'Alive' THEN f.days END AS time_days
        FROM wanted AS w
        LEFT JOIN patient AS p ON p.id = w.id AND p.retired_release_id IS NULL
        LEFT JOIN demographic AS d ON d.patient_id = p.id AND d.retired_release_id IS NULL
        LEFT JOIN follow AS f ON f.patient_id = p.id
    )
    SELECT id, case_id, time_days, vital_status = 'Dead' AS event,
           CASE
               WHEN NOT found THEN 'patient_not_found'
               WHEN vital_status IS NULL THEN 'vital_status_missing'
               WHEN vital_status NOT IN ('Alive', 'Dead') THEN 'vital_status_unknown'
               WHEN vital_status = 'Dead' AND days_to_death IS NULL THEN 'dead_without_days_to_death'
               WHEN vital_status = 'Alive' AND follow_up_days IS NULL THEN 'alive_without_follow_up'
               WHEN time_days < 0 THEN 'negative_time'
           END AS excluded
    FROM joined
    """


_SURVIVAL_SQL = text(
    f"SELECT * FROM ({outcomes_sql('SELECT DISTINCT unnest(CAST(:ids AS bigint[])) AS id')}) AS o ORDER BY id"
)

_Outcome = SurvivalRecord | ExclusionReason


def _outcomes(conn: Connection, patient_ids: Iterable[int]) -> dict[int, _Outcome]:
    ids = sorted({int(i) for i in patient_ids})
    if not ids:
        return {}
    outcomes: dict[int, _Outcome] = {}
    for pid, case_id, time_days, event, excluded in conn.execute(_SURVIVAL_SQL, {"ids": ids}):
        if excluded is not None:
            outcomes[pid] = excluded
        else:
            outcomes[pid] = SurvivalRecord(
                patient_id=pid, case_id=case_id, time_days=time_days, event=bool(event)
            )
    return outcomes


def _collect(outcomes: Mapping[int, _Outcome], patient_ids: Iterable[int]) -> SurvivalData:
    records: list[SurvivalRecord] = []
    excluded: Counter[ExclusionReason] = Counter()
    for pid in sorted({int(i) for i in patient_ids}):
        outcome = outcomes[pid]
        if isinstance(outcome, SurvivalRecord):
            records.append(outcome)
        else:
            excluded[outcome] += 1
    return SurvivalData(records=tuple(records), excluded={r: excluded[r] for r in EXCLUSION_REASONS})


def survival_data(conn: Connection, patient_ids: Sequence[int]) -> SurvivalData:
    """Overall-survival times of patients under ``SURVIVAL_RULES``, in one query.

    Args:
        conn: a connection; nothing is written.
        patient_ids: ``patient.id`` values; duplicates count once.

    Returns:
        The usable patients ordered by id, and the excluded ids counted by reason.
    """
    outcomes = _outcomes(conn, patient_ids)
    return _collect(outcomes, patient_ids)


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _fit_group(name: str, data: SurvivalData, *, alpha: float) -> GroupSurvival:
    events = sum(r.event for r in data.records)
    if not data.records:
        return GroupSurvival(
            name=name,
            n=0,
            events=0,
            censored=0,
            excluded=data.excluded,
            median_days=None,
            median_ci_lower_days=None,
            median_ci_upper_days=None,
            curve=(),
        )
    # Imported here: lifelines pulls in scipy and takes seconds, and every user of the cohorts package
    # (API start-up, the CLI) would otherwise pay for it.
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    fitter = KaplanMeierFitter(alpha=alpha)
    fitter.fit(
        [r.time_days for r in data.records], event_observed=[r.event for r in data.records], label=name
    )
    survival = fitter.survival_function_.iloc[:, 0]
    bounds = fitter.confidence_interval_
    table = fitter.event_table
    if not (survival.index.equals(bounds.index) and survival.index.equals(table.index)):
        raise RuntimeError(f"lifelines returned misaligned tables for group {name!r}")  # pragma: no cover
    curve = tuple(
        CurvePoint(
            time_days=int(t),
            survival=float(s),
            ci_lower=_finite(lo),
            ci_upper=_finite(hi),
            at_risk=int(at_risk),
            events=int(observed),
            censored=int(censored),
        )
        for t, s, lo, hi, at_risk, observed, censored in zip(
            survival.index,
            survival.to_numpy(),
            bounds.iloc[:, 0].to_numpy(),
            bounds.iloc[:, 1].to_numpy(),
            table["at_risk"].to_numpy(),
            table["observed"].to_numpy(),
            table["censored"].to_numpy(),
            strict=True,
        )
    )
    median_bounds = median_survival_times(bounds)
    return GroupSurvival(
        name=name,
        n=len(data.records),
        events=events,
        censored=len(data.records) - events,
        excluded=data.excluded,
        median_days=_finite(fitter.median_survival_time_),
        median_ci_lower_days=_finite(median_bounds.iloc[0, 0]),
        median_ci_upper_days=_finite(median_bounds.iloc[0, 1]),
        curve=curve,
    )


def kaplan_meier(
    conn: Connection, groups: Mapping[str, Sequence[int]], *, alpha: float = 0.05
) -> SurvivalResult:
    """Kaplan–Meier overall survival of each group, and the log-rank test across the non-empty groups.

    All groups' times come from one query (``survival_data``'s). The log-rank test
    (``lifelines.statistics.multivariate_logrank_test``; for two groups it equals the two-sample test)
    assumes the groups are disjoint: a patient in two groups counts in both.

    Args:
        conn: a connection; nothing is written.
        groups: group name -> ``patient.id`` values, in the order the result lists them.
        alpha: 1 - the confidence level of the pointwise bands (lifelines' exponential Greenwood).

    Returns:
        One ``GroupSurvival`` per group (a group with no usable patient has ``n=0`` and an empty curve),
        and the log-rank statistic and p-value, both None with fewer than two non-empty groups.

    Raises:
        ValueError: ``alpha`` is not strictly between 0 and 1.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), not {alpha}")
    outcomes = _outcomes(conn, (pid for ids in groups.values() for pid in ids))
    data = {name: _collect(outcomes, ids) for name, ids in groups.items()}
    fitted = tuple(_fit_group(name, d, alpha=alpha) for name, d in data.items())

    tested = [name for name, d in data.items() if d.records]
    statistic: float | None = None
    p_value: float | None = None
    if len(tested) >= 2:
        from lifelines.statistics import multivariate_logrank_test

        records = [(label, r) for label, name in enumerate(tested) for r in data[name].records]
        test = multivariate_logrank_test(
            [r.time_days for _, r in records],
            [label for label, _ in records],
            [r.event for _, r in records],
        )
        statistic = _finite(test.test_statistic)
        p_value = _finite(test.p_value)
    else:
        tested = []
    return SurvivalResult(
        rules=SURVIVAL_RULES,
        alpha=alpha,
        groups=fitted,
        logrank_groups=tuple(tested),
        logrank_statistic=statistic,
        logrank_p_value=p_value,
    )


def survival_outcomes(
    conn: Connection, patient_ids: Sequence[int]
) -> dict[int, SurvivalRecord | ExclusionReason]:
    """Per patient id: its survival record, or the reason it has none (one query; for exports)."""
    return _outcomes(conn, patient_ids)
