"""Materialised per-patient modalities; an index for IDC modality filters

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 00:30:00+00:00

Written by hand (autogenerate does not see materialised views). See NOTES.md.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Keep in step with oncograph.cohorts.fields.FILE_MODALITIES / IMAGING_MODALITIES (a test compares them).
PATIENT_MODALITY = """
CREATE MATERIALIZED VIEW patient_modality AS
SELECT patient_id, modality, bool_or(open) AS via_open_data FROM (
  SELECT fp.patient_id, m.modality, (f.access IS NULL OR f.access <> 'controlled') AS open
  FROM file_patient fp
  JOIN data_file f ON f.id = fp.file_id AND f.retired_release_id IS NULL
  CROSS JOIN LATERAL (VALUES
    (CASE WHEN f.is_slide THEN 'slide' END),
    (CASE WHEN f.experimental_strategy = 'RNA-Seq' OR f.data_type = 'Gene Expression Quantification'
          THEN 'rnaseq' END),
    (CASE f.experimental_strategy WHEN 'miRNA-Seq' THEN 'mirnaseq' WHEN 'WXS' THEN 'wxs' WHEN 'WGS' THEN 'wgs'
          WHEN 'Methylation Array' THEN 'methylation' WHEN 'Genotyping Array' THEN 'genotyping' END),
    (CASE WHEN f.data_type = 'Pathology Report' THEN 'clinical_text' END)) AS m(modality)
  WHERE m.modality IS NOT NULL
  UNION ALL
  SELECT l.patient_id,
         CASE s.modality WHEN 'CT' THEN 'ct' WHEN 'MR' THEN 'mr' WHEN 'PT' THEN 'pet' WHEN 'CR' THEN 'xray'
              WHEN 'DX' THEN 'xray' WHEN 'MG' THEN 'mammography' WHEN 'US' THEN 'ultrasound'
              WHEN 'SM' THEN 'slide' END,
         true
  FROM identity_link l
  JOIN idc_patient ip ON l.commons = 'idc' AND ip.collection_id = l.namespace
       AND ip.patient_id = l.external_id AND ip.retired_release_id IS NULL
  JOIN imaging_series s ON s.idc_patient_id = ip.id AND s.retired_release_id IS NULL
  WHERE s.modality IN ('CT', 'MR', 'PT', 'CR', 'DX', 'MG', 'US', 'SM')
  UNION ALL
  SELECT patient_id, 'proteomics', true FROM identity_link WHERE commons = 'pdc'
) AS x
GROUP BY patient_id, modality
"""


def upgrade() -> None:
    op.execute(PATIENT_MODALITY)
    op.execute("CREATE UNIQUE INDEX ix_patient_modality_patient ON patient_modality (patient_id, modality)")
    op.execute("CREATE INDEX ix_patient_modality_modality ON patient_modality (modality, patient_id)")
    op.execute(
        "CREATE INDEX ix_imaging_series_modality_patient ON imaging_series (modality, idc_patient_id) "
        "WHERE retired_release_id IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_imaging_series_modality_patient")
    op.execute("DROP MATERIALIZED VIEW IF EXISTS patient_modality")
