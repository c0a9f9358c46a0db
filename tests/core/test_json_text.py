"""JSON values are written and read by orjson (app.core.db.json_text, json_value), and come back as
the standard library would have read them."""

from __future__ import annotations

import json

from sqlalchemy import JSON, bindparam, select

from app.core.db import json_text, json_value

VALUE = {"agency_ids": [3, 5], 7: "ё, Краснодар", "due_at": None, "share": 0.5, "ok": True}


def test_json_text_writes_what_the_standard_library_would_read_back():
    assert json.loads(json_text(VALUE)) == json.loads(json.dumps(VALUE))
    assert json_text({"a": "ё"}) == '{"a":"ё"}'  # UTF-8, not \\u escapes
    written = json.dumps(VALUE)  # what rows written before hold (\\u escapes, spaces)
    assert json_value(written) == json.loads(written)


def test_the_engine_writes_json_parameters_with_it(client, db):
    engine = client.app.state.engine
    assert engine.dialect._json_serializer is json_text
    assert engine.dialect._json_deserializer is json_value

    async def round_trip(session):
        return (await session.execute(select(bindparam("v", VALUE, type_=JSON)))).scalar_one()

    assert db.run(round_trip) == json.loads(json.dumps(VALUE))
