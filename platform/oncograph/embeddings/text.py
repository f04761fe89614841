"""Clinical text: each patient's structured record rendered to one deterministic summary for a sentence encoder.

The same graph state always renders the same text (fields in a fixed order, children sorted by their GDC ids,
numbers printed as the graph holds them, days converted to years only where the GDC dictionary means an age),
so the summary's sha256 is the input checksum that decides whether a re-run re-embeds a patient. Retired
records are left out: the summary describes the patient as the current data releases do. Empty values are
omitted rather than written as "unknown", so two patients differ in text only where their records differ.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from oncograph.db.models import Demographic, Diagnosis, Exposure, FollowUp, Patient, Project, Treatment

#: Days in a year, as the GDC dictionary counts ``age_at_diagnosis`` (days) into years.
_DAYS_PER_YEAR = 365.25


@dataclass(frozen=True, slots=True)
class ClinicalSummary:
    patient_id: int
    case_id: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def _live(model: Any) -> Any:
    return model.retired_release_id.is_(None)


def _clause(label: str, value: Any) -> str | None:
    if value is None or value == "" or str(value).lower() in ("not reported", "unknown", "--", "'--"):
        return None
    return f"{label} {value}"


def _join(parts: Iterable[str | None]) -> str:
    return ", ".join(p for p in parts if p)


def _years(days: int | None) -> str | None:
    return None if days is None else f"{days / _DAYS_PER_YEAR:.1f} years"


def _by_patient(session: Session, model: Any, ids: Sequence[int], order: Any) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = defaultdict(list)
    rows = session.execute(
        select(model).where(model.patient_id.in_(ids), _live(model)).order_by(model.patient_id, order)
    ).scalars()
    for row in rows:
        out[row.patient_id].append(row)
    return out


def _diagnosis(d: Diagnosis) -> str:
    stage = d.ajcc_pathologic_stage or d.tumor_stage or d.ajcc_clinical_stage or d.figo_stage or d.stage
    tnm = "".join(x for x in (d.ajcc_pathologic_t, d.ajcc_pathologic_n, d.ajcc_pathologic_m) if x)
    return _join(
        [
            d.primary_diagnosis,
            _clause("of the", d.tissue_or_organ_of_origin),
            _clause("morphology", d.morphology),
            _clause("at age", _years(d.age_at_diagnosis)),
            _clause("stage", stage),
            _clause("TNM", tnm or None),
            _clause("grade", d.tumor_grade),
            _clause("classified as", d.classification_of_tumor),
            _clause("progression or recurrence:", d.progression_or_recurrence),
            _clause("last known disease status:", d.last_known_disease_status),
            _clause("prior malignancy:", d.prior_malignancy),
        ]
    )


def _treatment(t: Treatment) -> str:
    return _join(
        [
            t.treatment_type,
            _clause("with", t.therapeutic_agents),
            _clause("intent", t.treatment_intent_type),
            _clause("outcome", t.treatment_outcome),
            _clause("from day", t.days_to_treatment_start),
            _clause("to day", t.days_to_treatment_end),
        ]
    )


def _follow_up(f: FollowUp) -> str:
    return _join(
        [
            _clause("day", f.days_to_follow_up),
            f.timepoint_category,
            _clause("response", f.disease_response),
            _clause("progression or recurrence:", f.progression_or_recurrence),
            _clause("ECOG", f.ecog_performance_status),
            _clause("Karnofsky", f.karnofsky_performance_status),
        ]
    )


def _exposure(e: Exposure) -> str:
    return _join(
        [
            _clause("tobacco smoking status", e.tobacco_smoking_status),
            _clause("pack-years", e.pack_years_smoked),
            _clause("alcohol history", e.alcohol_history),
            _clause("BMI", e.bmi),
        ]
    )


def _section(title: str, items: Iterable[str]) -> str | None:
    texts = [i for i in items if i]
    return f"{title}: " + "; ".join(texts) + "." if texts else None


def render_summaries(session: Session, patient_ids: Sequence[int]) -> list[ClinicalSummary]:
    """The clinical summaries of ``patient_ids`` (live patients only), in the order given."""
    ids = list(dict.fromkeys(int(p) for p in patient_ids))
    if not ids:
        return []
    patients = {
        p.id: (p, project)
        for p, project in session.execute(
            select(Patient, Project.project_id)
            .outerjoin(Project, Project.id == Patient.project_id)
            .where(Patient.id.in_(ids), _live(Patient))
        )
    }
    demographics = {
        d.patient_id: d
        for d in session.execute(
            select(Demographic).where(Demographic.patient_id.in_(ids), _live(Demographic))
        ).scalars()
    }
    diagnoses = _by_patient(session, Diagnosis, ids, Diagnosis.diagnosis_id)
    treatments = _by_patient(session, Treatment, ids, Treatment.treatment_id)
    follow_ups = _by_patient(session, FollowUp, ids, FollowUp.follow_up_id)
    exposures = _by_patient(session, Exposure, ids, Exposure.exposure_id)
    out: list[ClinicalSummary] = []
    for pid in ids:
        if pid not in patients:
            continue
        patient, project = patients[pid]
        demo = demographics.get(pid)
        head = (
            _join(
                [
                    f"Patient {patient.submitter_id or patient.case_id}",
                    _clause("of project", project),
                    _clause("primary site", patient.primary_site),
                    _clause("disease type", patient.disease_type),
                ]
            )
            + "."
        )
        person = None
        if demo is not None:
            person = _join(
                [
                    _clause("sex", demo.sex),
                    _clause("race", demo.race),
                    _clause("ethnicity", demo.ethnicity),
                    _clause("vital status", demo.vital_status),
                    _clause("days to death", demo.days_to_death),
                    _clause("cause of death", demo.cause_of_death),
                ]
            )
        sections = [
            head,
            f"Demographics: {person}." if person else None,
            _section("Diagnoses", (_diagnosis(d) for d in diagnoses.get(pid, []))),
            _section("Treatments", (_treatment(t) for t in treatments.get(pid, []))),
            _section("Exposures", (_exposure(e) for e in exposures.get(pid, []))),
            _section("Follow-ups", (_follow_up(f) for f in follow_ups.get(pid, []))),
        ]
        out.append(ClinicalSummary(pid, str(patient.case_id), "\n".join(s for s in sections if s)))
    return out
