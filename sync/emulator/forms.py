"""Request decoding as RetailCRM's PHP backend does it (spec §1, §10 item 3).

Query strings and form bodies use PHP bracket names (``filter[ids][]=1``, ``filter[ids][0]=1``);
POST bodies are form-encoded or multipart, and the object parameters arrive as one JSON string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

JSON_FIELDS = ("integrationModule", "calls", "event", "customer", "order")
_NAME = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_SUBKEY = re.compile(r"\[([^\[\]]*)\]")


def nest(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """PHP's ``$_GET``: brackets build nested arrays, ``[]`` appends, numeric keys make lists."""
    root: dict[str, Any] = {}
    for name, value in pairs:
        match = _NAME.fullmatch(name)
        keys = [match.group(1), *_SUBKEY.findall(match.group(2))] if match else [name]
        node = root
        for key in keys[:-1]:
            key = key or str(len(node))
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[keys[-1] or str(len(node))] = value
    return {name: _listify(value) for name, value in root.items()}


def _listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    items = {k: _listify(v) for k, v in value.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def form_pairs(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The fields of a POST body; raises ``ValueError`` when it cannot be decoded."""
    if content_type.lower().startswith("multipart/form-data"):
        return _multipart_pairs(content_type, body)
    return parse_qsl(body.decode("utf-8"), keep_blank_values=True)


def _multipart_pairs(content_type: str, body: bytes) -> list[tuple[str, str]]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ValueError("not a multipart body")
    pairs = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            pairs.append((name, payload.decode("utf-8")))
    return pairs


def decode_json_fields(params: dict[str, Any]) -> frozenset[str]:
    """Parse the JSON-string parameters in place; returns the names that were not valid JSON."""
    invalid = set()
    for name in JSON_FIELDS:
        value = params.get(name)
        if isinstance(value, str):
            try:
                params[name] = json.loads(value)
            except ValueError:
                invalid.add(name)
    return frozenset(invalid)
