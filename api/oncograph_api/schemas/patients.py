"""Patient listings and one patient's graph."""

from __future__ import annotations

from pydantic import Field

from oncograph_api.schemas.base import _Open, _Output


class CaseIdentity(_Output):
    """A patient as listings name it: its ids, project, primary site and disease type."""

    case_id: str = Field(description="GDC case UUID.", examples=["1f601832-eee3-48fb-acf5-80c4a454f26e"])
    submitter_id: str | None = Field(description="Case barcode.", examples=["TCGA-BH-A0EA"])
    project_id: str | None = Field(description="GDC project id.", examples=["TCGA-BRCA"])
    primary_site: str | None = Field(description="Primary site of the case.")
    disease_type: str | None = Field(description="Disease type of the case.")


class PatientSummary(CaseIdentity):
    sex: str | None = Field(description="Normalised sex (sex_at_birth, or gender before 2025).")
    vital_status: str | None = Field(description="Demographic vital status.")
    age_at_index: int | None = Field(description="Age at the index date, in years.")
    age_at_diagnosis: int | None = Field(description="Age at the first diagnosis, in days.")


class PatientPage(_Output):
    data: list[PatientSummary] = Field(description="One page of patients in the requested order.")
    total: int = Field(description="Visible patients matching the filter, on all pages.")
    sort: str = Field(description="The order used (`-` prefix: descending).", examples=["submitter_id"])
    limit: int = Field(description="The page size used.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same filters and sort) for the next page; null on the last page."
    )


class Lineage(_Open):
    """Where a record's values came from. Graph records: the source document version, its release and run,
    the first and last release the record was seen in and the release that retired it (null: current).
    Identity links and embeddings: the run that made them."""

    source_document_id: int | None = Field(default=None, description="The source document version.")
    source: str | None = Field(default=None, description="The source of the document.", examples=["gdc_api"])
    release: str | None = Field(default=None, description="The release the document version was fetched in.")
    run_id: int | None = Field(default=None, description="The run that fetched the document or made the row.")
    first_seen: str | None = Field(default=None, description="First release the record was seen in.")
    last_seen: str | None = Field(default=None, description="Last release the record was seen in.")
    retired: str | None = Field(
        default=None, description="The release that no longer had it; null while current."
    )


class GraphRecord(_Open):
    """One record of the graph: the source's own columns (GDC dictionary names) plus its ``lineage``."""

    lineage: Lineage = Field(description="Where the values came from.")


class PatientDetail(_Output):
    """The whole graph of one patient. Nested records (treatments in diagnoses, portions in samples, series in
    imaging studies...) are GraphRecords too."""

    patient: GraphRecord = Field(description="The GDC case.")
    project: GraphRecord | None = Field(description="Its project (with `program`).")
    demographic: GraphRecord | None = Field(description="Its demographic.")
    diagnoses: list[GraphRecord] = Field(
        description="Diagnoses, each with `treatments` and `pathology_details`."
    )
    treatments_without_diagnosis: list[GraphRecord] = Field(description="Treatments not tied to a diagnosis.")
    follow_ups: list[GraphRecord] = Field(description="Follow-ups, by days_to_follow_up.")
    exposures: list[GraphRecord] = Field(description="Exposures.")
    family_histories: list[GraphRecord] = Field(description="Family histories.")
    samples: list[GraphRecord] = Field(
        description="Samples, each with `portions`; portions with `analytes` (with `aliquots`) and `slides`."
    )
    files: list[GraphRecord] = Field(
        description="Files you may see (controlled files need a grant), each with `sample_ids`."
    )
    imaging: list[GraphRecord] = Field(
        description="Linked IDC patients, each with `studies`; a study with `series_count`, `modalities`, `series`."
    )
    proteomics: list[GraphRecord] = Field(
        description="Linked PDC cases, each with `studies`; a study with `files` counted by category and type."
    )
    identity_links: list[GraphRecord] = Field(
        description="Links to other commons: commons, namespace, external_id, method, confidence, evidence."
    )
    embeddings: list[GraphRecord] = Field(
        description="Embeddings (model, model_version, modality, object_kind, object_id, dim; not the vectors)."
    )
