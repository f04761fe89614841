"""GDC Data Portal bulk exports -> :class:`~oncograph.domain.records.SourceRecord`s in the GDC API shape.

Supported: clinical TSVs (portal v2 dotted headers and their exposure / follow-up / pathology-detail /
family-history companions; portal v1 short headers, 2020s and 2018/19), BCR Biotab clinical patient files,
sample sheets, gdc-client manifests, the portal's clinical / biospecimen / Cases-table / Files-table / file
metadata JSON downloads and saved GDC API ``/cases`` or ``/files`` hits. Formats are recognised from content.
"""

from oncograph.sources.gdc.portal.formats import SUPPORTED_FORMATS, PortalFormat, detect_format
from oncograph.sources.gdc.portal.reader import PortalFile, read_portal_file

__all__ = ["SUPPORTED_FORMATS", "PortalFile", "PortalFormat", "detect_format", "read_portal_file"]
