"""ORM models of the patient graph and its lineage. The schema is created only by Alembic migrations."""

from oncograph.db.models import imaging, proteomics  # noqa: F401  (register their tables)
from oncograph.db.models.access import ROLES, AccessGrant, ApiKey, Principal, ProjectControl
from oncograph.db.models.base import Base
from oncograph.db.models.biospecimen import (
    Aliquot,
    Analyte,
    DataFile,
    FilePatient,
    FileSample,
    Portion,
    Sample,
    Slide,
)
from oncograph.db.models.clinical import (
    Demographic,
    Diagnosis,
    Exposure,
    FamilyHistory,
    FollowUp,
    PathologyDetail,
    Patient,
    Program,
    Project,
    Treatment,
)
from oncograph.db.models.cohorts import Cohort, CohortMember, CohortVersion
from oncograph.db.models.embeddings import (
    ATTACHMENTS,
    ENCODER_MODALITIES,
    Embedding,
    EmbeddingFailure,
    Encoder,
)
from oncograph.db.models.exports import EXPORT_STATUSES, Export
from oncograph.db.models.identity import IdentityLink
from oncograph.db.models.provenance import Quarantine, Run, SourceDocument, SourceRelease

__all__ = [
    "ATTACHMENTS",
    "ENCODER_MODALITIES",
    "EXPORT_STATUSES",
    "ROLES",
    "AccessGrant",
    "Aliquot",
    "Analyte",
    "ApiKey",
    "Base",
    "Cohort",
    "CohortMember",
    "CohortVersion",
    "DataFile",
    "Demographic",
    "Diagnosis",
    "Embedding",
    "EmbeddingFailure",
    "Encoder",
    "Export",
    "Exposure",
    "FamilyHistory",
    "FilePatient",
    "FileSample",
    "FollowUp",
    "IdentityLink",
    "PathologyDetail",
    "Patient",
    "Portion",
    "Principal",
    "Program",
    "Project",
    "ProjectControl",
    "Quarantine",
    "Run",
    "Sample",
    "Slide",
    "SourceDocument",
    "SourceRelease",
    "Treatment",
]
