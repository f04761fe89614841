"""Deep links to the real viewers and portals, built the way they build them (pure string functions).

- IDC's OHIF viewer (radiology): ``/v3/viewer/?StudyInstanceUIDs=<study>&SeriesInstanceUIDs=<series>``;
- IDC's Slim viewer (slide microscopy, DICOM SM): ``/slim/studies/<study>/series/<series>``;
- the GDC Data Portal's case and file pages: ``/cases/<case UUID>`` and ``/files/<file UUID>``;
- this UI's own pages: ``/patient?id=…``, ``/cohorts?cohort=…``, ``/export?cohort=…``.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

IDC_VIEWER = "https://viewer.imaging.datacommons.cancer.gov"
GDC_PORTAL = "https://portal.gdc.cancer.gov"


def _part(value: str) -> str:
    return quote(str(value), safe="")


def ohif_url(study_uid: str, series_uid: str | None = None) -> str:
    params = {"StudyInstanceUIDs": study_uid}
    if series_uid:
        params["SeriesInstanceUIDs"] = series_uid
    return f"{IDC_VIEWER}/v3/viewer/?{urlencode(params)}"


def slim_url(study_uid: str, series_uid: str | None = None) -> str:
    url = f"{IDC_VIEWER}/slim/studies/{_part(study_uid)}"
    return f"{url}/series/{_part(series_uid)}" if series_uid else url


def series_viewer_url(modality: str | None, study_uid: str, series_uid: str) -> str:
    """Slim for slide microscopy (SM), OHIF for everything else."""
    return (
        slim_url(study_uid, series_uid)
        if (modality or "").upper() == "SM"
        else ohif_url(study_uid, series_uid)
    )


def gdc_case_url(case_id: str) -> str:
    return f"{GDC_PORTAL}/cases/{_part(case_id)}"


def gdc_file_url(file_id: str) -> str:
    return f"{GDC_PORTAL}/files/{_part(file_id)}"


def patient_page(case: str) -> str:
    return f"/patient?{urlencode({'id': case})}"


def cohort_page(cohort_id: int) -> str:
    return f"/cohorts?{urlencode({'cohort': int(cohort_id)})}"


def export_page(cohort_id: int | None = None, export_id: int | None = None) -> str:
    params = {k: int(v) for k, v in (("cohort", cohort_id), ("export", export_id)) if v is not None}
    return "/export" + (f"?{urlencode(params)}" if params else "")


__all__ = [
    "cohort_page",
    "export_page",
    "gdc_case_url",
    "gdc_file_url",
    "ohif_url",
    "patient_page",
    "series_viewer_url",
    "slim_url",
]
