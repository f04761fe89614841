"""source_document.raw (json text) becomes raw_zstd: the same JSON text, zstd-compressed by the client

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08 01:00:00+00:00

Written by hand (ADR 0001, third amendment). Storing a harvest's documents as ``json`` cost PostgreSQL the
parse of one large JSON parameter, pglz compression and a TOAST insert per ~10 KB document: ~0.3 s of every
1,000 GDC cases. Compressed by the client (``oncograph.db.documents``, off the writing thread), a document is
~3 KB of bytes that PostgreSQL stores as they come, in its row (``toast_tuple_target`` at its maximum, so
only documents over ~8 KB compressed go to TOAST, where ``STORAGE EXTERNAL`` keeps pglz from trying again).
Existing documents are converted in batches of 1,000 (their JSON text, byte for byte, compressed).
"""

import base64
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

from oncograph.db.documents import pack_json, unpack_json

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000


def _convert(select: str, update: str, convert: Callable[[Any], Any]) -> None:
    conn = op.get_bind()
    last = 0
    while rows := conn.execute(sa.text(select), {"last": last, "n": _BATCH}).all():
        payload = orjson.dumps([{"id": doc_id, "v": convert(value)} for doc_id, value in rows])
        conn.execute(sa.text(update), {"rows": payload.decode()})
        last = rows[-1][0]


def upgrade() -> None:
    op.execute("ALTER TABLE source_document ADD COLUMN raw_zstd bytea")
    _convert(
        "SELECT id, CAST(raw AS text) FROM source_document WHERE id > :last ORDER BY id LIMIT :n",
        "UPDATE source_document d SET raw_zstd = decode(s.v, 'base64') "
        "FROM json_to_recordset(CAST(:rows AS json)) AS s(id bigint, v text) WHERE d.id = s.id",
        lambda value: base64.b64encode(pack_json(value.encode())).decode("ascii"),
    )
    op.execute("ALTER TABLE source_document ALTER COLUMN raw_zstd SET NOT NULL")
    op.execute("ALTER TABLE source_document ALTER COLUMN raw_zstd SET STORAGE EXTERNAL")
    op.execute("ALTER TABLE source_document SET (toast_tuple_target = 8160)")
    op.execute("ALTER TABLE source_document DROP COLUMN raw")


def downgrade() -> None:
    op.execute("ALTER TABLE source_document ADD COLUMN raw json")
    _convert(
        "SELECT id, raw_zstd FROM source_document WHERE id > :last ORDER BY id LIMIT :n",
        "UPDATE source_document d SET raw = s.v "
        "FROM json_to_recordset(CAST(:rows AS json)) AS s(id bigint, v json) WHERE d.id = s.id",
        lambda value: orjson.Fragment(unpack_json(value)),
    )
    op.execute("ALTER TABLE source_document ALTER COLUMN raw SET NOT NULL")
    op.execute("ALTER TABLE source_document RESET (toast_tuple_target)")
    op.execute("ALTER TABLE source_document DROP COLUMN raw_zstd")
