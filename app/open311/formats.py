"""Open311's two wire formats, rendered from one plain representation (dicts and lists).

XML is the spec's required format: no namespace, an XML declaration naming UTF-8, a container
element for every list. JSON follows the spec's "Spark convention": each such container of one
repeated child becomes a JSON array, everything else maps element for element.
"""

from __future__ import annotations

import enum
import re
import xml.etree.ElementTree as ET
from datetime import datetime, tzinfo
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

XML_MEDIA_TYPE = "text/xml; charset=utf-8"
JSON_MEDIA_TYPE = "application/json; charset=utf-8"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


class Format(enum.StrEnum):
    json = "json"
    xml = "xml"


# Every container element and the name of its repeated child (in JSON: an array).
ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}

# Characters XML 1.0 cannot carry at all, not even escaped; citizens' text may contain them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def w3c(value: datetime | None, zone: tzinfo) -> str | None:
    """A W3C datetime with the region's UTC offset, e.g. 2026-11-28T12:00:00+03:00."""
    return value.astimezone(zone).isoformat(timespec="seconds") if value is not None else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _append(parent: ET.Element, tag: str, value: Any) -> None:
    element = ET.SubElement(parent, tag)
    if isinstance(value, dict):
        for key, item in value.items():
            _append(element, key, item)
    elif isinstance(value, list):
        for item in value:
            _append(element, ITEM_TAGS[tag], item)
    else:
        element.text = _text(value)


def to_xml(root: str, content: dict[str, Any] | list[Any]) -> bytes:
    element = ET.Element(root)
    if isinstance(content, list):
        for item in content:
            _append(element, ITEM_TAGS[root], item)
    else:
        for key, item in content.items():
            _append(element, key, item)
    return XML_DECLARATION + ET.tostring(element, encoding="utf-8", xml_declaration=False)


def respond(
    fmt: Format,
    root: str,
    content: dict[str, Any] | list[Any],
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """`root` names the XML document element; in JSON the content itself is the document."""
    if fmt is Format.json:
        body, media_type = orjson.dumps(content), JSON_MEDIA_TYPE
    else:
        body, media_type = to_xml(root, content), XML_MEDIA_TYPE
    return Response(body, status_code=status_code, headers=headers, media_type=media_type)


def format_of(request: Request) -> Format:
    """The format an answer to this request should take: the one its path names, else XML
    (the spec's required format) — also for errors about the format itself."""
    named = request.path_params.get("format") or request.url.path.rpartition(".")[2]
    return Format.json if named == Format.json else Format.xml
