"""Intake's URL fields (app/cases/schemas.py Url) check what Annotated[HttpUrl,
StringConstraints(max_length=2000)] checks, without its Python wrapper: the same value, the same
errors, the same JSON schema, for JSON input (as requests send it) and Python input."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from pydantic import HttpUrl, StringConstraints, TypeAdapter, ValidationError

from app.cases.schemas import AppealCreate, IncidentCreate, Url

HTTP_URL = TypeAdapter(Annotated[HttpUrl, StringConstraints(max_length=2000)])
OURS = TypeAdapter(Url)

INPUTS = [
    "https://vk.com/wall-1_2",
    "https://vk.com",  # normalized with a trailing slash
    "HTTP://VK.COM/A?b=c#d",
    "https://пример.рф/путь",
    "http://[::1]:80/x",
    "https://user:pw@host:8080/p",
    "https://x.org/" + "a" * 1986,  # 2,000 characters
    "https://x.org" + "/" + "a" * 1986,
    "https://x.org/" + "a" * 1987,  # 2,001: too long
    "https://x.org" + "a" * 1987,  # too long only once normalized ("/" added)
    "https://x.org/" + "a" * 3000,  # past HttpUrl's own 2,083
    "ftp://x.org",
    "mailto:a@b.c",
    "javascript:alert(1)",
    "not a url",
    "",
    "https://",
    "http://a b.com",
    "https://x.org:99999",
    5,
    None,
    ["https://x.org"],
]


def _outcome(adapter: TypeAdapter, value: Any, mode: str) -> tuple[str, str]:
    try:
        if mode == "json":
            return "ok", str(adapter.validate_json(json.dumps(value)))
        return "ok", str(adapter.validate_python(value))
    except ValidationError as exc:
        return "error", json.dumps(exc.errors(include_url=False), default=str)


@pytest.mark.parametrize("mode", ["json", "python"])
@pytest.mark.parametrize("value", INPUTS, ids=range(len(INPUTS)))
def test_url_checks_as_http_url_did(value, mode):
    assert _outcome(OURS, value, mode) == _outcome(HTTP_URL, value, mode)


def test_url_json_schema_is_http_urls():
    assert OURS.json_schema() == HTTP_URL.json_schema()


def test_models_give_the_urls_as_text_the_parser_wrote():
    incident = IncidentCreate.model_validate(
        {
            "network": "vk",
            "post_url": "HTTPS://VK.com",
            "post_id": "1",
            "published_at": "2026-01-01T00:00:00Z",
            "text": "Яма",
        }
    )
    assert str(incident.post_url) == "https://vk.com/"
    appeal = AppealCreate.model_validate(
        {
            "channel": "web",
            "number": "1",
            "applicant_name": "Иванова",
            "text": "Нет воды",
            "attachment_urls": ["https://x.org", "http://пример.рф"],
        }
    )
    assert [str(u) for u in appeal.attachment_urls] == [
        "https://x.org/",
        "http://xn--e1afmkfd.xn--p1ai/",
    ]
