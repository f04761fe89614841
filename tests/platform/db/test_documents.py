"""Source documents stored zstd-compressed by the client (oncograph.db.documents, migration 0017)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import orjson
import pytest
import zstandard
from alembic import command
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from oncograph.db.documents import pack, pack_base64, unpack
from oncograph.db.migrate import alembic_config, current_revision, upgrade
from tests.support.db import refuse_non_test

# real content kinds: a GDC hit's nesting, a TSV header (a list), unicode, numbers, nulls
DOCUMENTS = [
    {"case_id": "7a1c9a2e-0000-4000-8000-000000000001", "diagnoses": [{"age": 12345, "stage": None}]},
    ["cases.case_id", "demographic.gender", "diagnoses.ajcc_pathologic_stage"],
    {"zeta": 1, "alpha": "Müller – 淋巴瘤", "big": 2**53, "ratio": 0.1},
]


def test_pack_round_trips_and_keeps_the_source_key_order() -> None:
    for doc in DOCUMENTS:
        stored = pack(doc)
        assert unpack(stored) == doc
        assert unpack(memoryview(stored)) == doc
        # a standard zstd frame of the JSON text, keys as the source sent them (not sorted)
        assert zstandard.ZstdDecompressor().decompress(stored) == orjson.dumps(doc)
        assert base64.b64decode(pack_base64(doc)) == stored
    assert list(unpack(pack(DOCUMENTS[2]))) == ["zeta", "alpha", "big", "ratio"]


@pytest.fixture()
def empty_url(pg_server_url: str) -> Iterator[str]:
    name = "oncograph_documents_migration_test"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    refuse_non_test(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _stored_as_json(engine: Engine) -> list[str]:
    with engine.begin() as conn:
        release = conn.execute(
            text("INSERT INTO source_release (source, release) VALUES ('gdc', 'r1') RETURNING id")
        ).scalar_one()
        run = conn.execute(
            text(
                "INSERT INTO run (transform, code_version, parameters, status) "
                "VALUES ('test', 'test', '{}', 'running') RETURNING id"
            )
        ).scalar_one()
        # 1,203 documents: more than one batch of the conversion
        for i in range(1203):
            doc = DOCUMENTS[i % len(DOCUMENTS)]
            conn.execute(
                text(
                    "INSERT INTO source_document (source, entity_type, entity_id, content_hash, release_id, "
                    "run_id, raw) VALUES ('gdc_api', 'case', :e, :h, :rel, :run, CAST(:raw AS json))"
                ),
                {
                    "e": f"case-{i}",
                    "h": f"h{i}",
                    "rel": release,
                    "run": run,
                    "raw": orjson.dumps(doc).decode(),
                },
            )
        return list(conn.execute(text("SELECT CAST(raw AS text) FROM source_document ORDER BY id")).scalars())


def test_migration_0017_converts_documents_both_ways(empty_url: str) -> None:
    engine = create_engine(empty_url)
    upgrade(engine, "0016")
    before = _stored_as_json(engine)

    upgrade(engine)
    assert current_revision(engine) == "0017"
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT raw_zstd FROM source_document ORDER BY id")).scalars().all()
        columns = set(
            conn.execute(
                text(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'source_document'"
                )
            ).scalars()
        )
        storage = conn.execute(
            text(
                "SELECT attstorage FROM pg_attribute WHERE attrelid = 'source_document'::regclass "
                "AND attname = 'raw_zstd'"
            )
        ).scalar_one()
        options = conn.execute(
            text("SELECT reloptions FROM pg_class WHERE oid = 'source_document'::regclass")
        ).scalar_one()
    assert "raw" not in columns and storage == "e" and options == ["toast_tuple_target=8160"]
    # the JSON text byte for byte, compressed
    assert [zstandard.ZstdDecompressor().decompress(s).decode() for s in stored] == before
    assert [unpack(s) for s in stored] == [DOCUMENTS[i % len(DOCUMENTS)] for i in range(1203)]

    command.downgrade(alembic_config(empty_url), "0016")
    with engine.connect() as conn:
        again = (
            conn.execute(text("SELECT CAST(raw AS text) FROM source_document ORDER BY id")).scalars().all()
        )
        options = conn.execute(
            text("SELECT reloptions FROM pg_class WHERE oid = 'source_document'::regclass")
        ).scalar_one()
    assert again == before and options is None
    engine.dispose()
