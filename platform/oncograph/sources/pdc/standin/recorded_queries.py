"""The GraphQL requests behind each recorded PDC response in ``data/pdc`` (see its SOURCES.md).

Each :class:`RecordedQuery` names the file, the key of the response in it, and the query (with variables)
that produced it. The stand-in parses these queries to learn which root field, alias and arguments each
recorded value answers; tests send them to the stand-in and compare the answer with the recording.

Where the recording's provenance cut the query short, the query is completed from the response itself
(its keys are exactly the fields that were selected); this is said per entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class RecordedQuery:
    """One recorded request: ``file``'s ``response_key`` is PDC's answer to ``query`` with ``variables``."""

    file: str
    response_key: str
    query: str
    variables: dict[str, Any] = field(default_factory=dict)
    note: str = ""


_STUDY_FIELDS = (
    "submitter_id_name study_id study_name study_shortname analytical_fraction experiment_type embargo_date "
    "acquisition_type cases_count filesCount { files_count } disease_type program_name program_id project_name "
    "project_id project_submitter_id primary_site pdc_study_id"
)

_UI_STUDY_2019_FIELDS = (
    "submitter_id_name program_name project_name disease_type primary_site analytical_fraction "
    "experiment_type cases_count num_raw num_mzml num_prot num_prot_assem num_psm"
)

_GEN3_PAGINATED_UI_STUDY = """
query FilteredStudiesDataPaginated(
  $offset_value: Int $limit_value: Int $sort_value: String $program_name_filter: String!
  $project_name_filter: String! $study_name_filter: String! $disease_filter: String! $filterValue: String!
  $analytical_frac_filter: String! $exp_type_filter: String! $ethnicity_filter: String! $race_filter: String!
  $gender_filter: String! $tumor_grade_filter: String! $sample_type_filter: String!
  $acquisition_type_filter: String! $data_category_filter: String! $file_type_filter: String!
  $access_filter: String! $downloadable_filter: String! $biospecimen_status_filter: String!
  $case_status_filter: String! $getAll: Boolean!
) {
  getPaginatedUIStudy(
    offset: $offset_value limit: $limit_value sort: $sort_value program_name: $program_name_filter
    project_name: $project_name_filter study_name: $study_name_filter disease_type: $disease_filter
    primary_site: $filterValue analytical_fraction: $analytical_frac_filter experiment_type: $exp_type_filter
    ethnicity: $ethnicity_filter race: $race_filter gender: $gender_filter tumor_grade: $tumor_grade_filter
    sample_type: $sample_type_filter acquisition_type: $acquisition_type_filter
    data_category: $data_category_filter file_type: $file_type_filter access: $access_filter
    downloadable: $downloadable_filter biospecimen_status: $biospecimen_status_filter
    case_status: $case_status_filter getAll: $getAll
  ) {
    total
    uiStudies {
      study_id pdc_study_id submitter_id_name study_description study_submitter_id program_name project_name
      disease_type primary_site analytical_fraction experiment_type embargo_date cases_count aliquots_count
      filesCount { file_type data_category files_count __typename }
      supplementaryFilesCount { data_category file_type files_count __typename }
      nonSupplementaryFilesCount { data_category file_type files_count __typename }
      contacts { name institution email url __typename }
      versions { number __typename }
      __typename
    }
    pagination { count sort from page total pages size __typename }
    __typename
  }
}
"""

_GEN3_EMPTY_FILTERS = (
    "project_name_filter", "study_name_filter", "disease_filter", "filterValue", "analytical_frac_filter",
    "exp_type_filter", "ethnicity_filter", "race_filter", "gender_filter", "tumor_grade_filter",
    "sample_type_filter", "acquisition_type_filter", "data_category_filter", "file_type_filter", "access_filter",
    "downloadable_filter", "biospecimen_status_filter", "case_status_filter",
)  # fmt: skip

_GEN3_PAGINATED_UI_STUDY_VARIABLES: dict[str, Any] = {
    "offset_value": 0,
    "limit_value": 10,
    "sort_value": "",
    "program_name_filter": "Applied Proteogenomics OrganizationaL Learning and Outcomes - APOLLO",
    **dict.fromkeys(_GEN3_EMPTY_FILTERS, ""),
    "getAll": False,
}

RECORDED_QUERIES: Final[tuple[RecordedQuery, ...]] = (
    RecordedQuery(
        "pdc_graphql_studyCatalog_and_study_PDC000109-111_gen3_fixture.json",
        "studyCatalog_response",
        "{studyCatalog(acceptDUA: true){pdc_study_id}}",
        note="verbatim from _source.requests[0]",
    ),
    RecordedQuery(
        "pdc_graphql_studyCatalog_and_study_PDC000109-111_gen3_fixture.json",
        "study_aliased_response",
        "{ "
        + " ".join(
            f'{sid} : study (pdc_study_id: "{sid}" acceptDUA: true) {{ {_STUDY_FIELDS} }}'
            for sid in ("PDC000109", "PDC000110", "PDC000111")
        )
        + " }",
        note="_source.requests[1] shows the PDC000109 part and says '(aliased per study)'; repeated for 110, 111",
    ),
    RecordedQuery(
        "pdc_graphql_getPaginatedUIStudy_PDC000123_gen3_fixture_partly_redacted.json",
        "response",
        _GEN3_PAGINATED_UI_STUDY,
        _GEN3_PAGINATED_UI_STUDY_VARIABLES,
        note=(
            "query and variables of the same gen3 test (whitespace compacted); the recorded answer lacks the "
            "pagination and Paginated.__typename that the query asked for (trimmed by the test author)"
        ),
    ),
    RecordedQuery(
        "pdc_graphql_case_01BR001_gdc_case_id_2019.json",
        "response",
        '{ case(case_submitter_id: "01BR001") { case_submitter_id project_submitter_id gdc_case_id disease_type } }',
        note="verbatim from _source.query_context; 2019 PDC answered one object where today's SDL says [Case]",
    ),
    RecordedQuery(
        "pdc_graphql_filesPerStudy_S038-3_RAW_2019.json",
        "response",
        '{ filesPerStudy (study_submitter_id: "S038-3", file_type: "RAW"){ study_submitter_id file_name '
        "file_type md5sum } }",
        note="verbatim from _source.query_context",
    ),
    RecordedQuery(
        "pdc_graphql_uiStudy_all_2019.json",
        "response",
        f"{{ uiStudy {{ {_UI_STUDY_2019_FIELDS} }} }}",
        note="_source.query_context is cut after 'num_ps'; the field list is completed from the response keys",
    ),
    RecordedQuery(
        "pdc_graphql_uiStudy_S016-1_2019.json",
        "response",
        f'{{ uiStudy(study_submitter_id: "S016-1") {{ {_UI_STUDY_2019_FIELDS} }} }}',
        note="_source.query_context is cut after 'num_prot'; the field list is completed from the response keys",
    ),
)
"""Every recorded PDC request, in the order the files are described in ``data/pdc/SOURCES.md``."""
