"""JSON Schemas of the SOVD bodies, for `include-schema=true` and the OpenAPI document."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
NUMBER: Schema = {"type": "number"}
LINK: Schema = {"type": "string", "format": "uri-reference"}
STAMP: Schema = {"type": "string", "format": "date-time"}
ANY: Schema = {}


def obj(
    properties: dict[str, Schema], required: tuple[str, ...] = (), *, closed: bool = True
) -> Schema:
    schema: Schema = {"type": "object", "properties": properties, "required": list(required)}
    if closed:
        schema["additionalProperties"] = False
    return schema


def items_of(item: Schema) -> Schema:
    return obj({"items": {"type": "array", "items": item}}, ("items",))


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


VERSION_INFO = obj(
    {
        "sovd_info": {
            "type": "array",
            "minItems": 1,
            "items": obj(
                {
                    "version": STRING,
                    "base_uri": LINK,
                    "vendor_info": obj({"name": STRING, "version": STRING}, ("name", "version")),
                },
                ("version", "base_uri"),
            ),
        }
    },
    ("sovd_info",),
)

ENTITY_REFERENCE = obj({"id": STRING, "name": STRING, "href": LINK}, ("id", "name", "href"))
ENTITY_COLLECTION = items_of(ENTITY_REFERENCE)

ROOT = obj(
    {
        "id": STRING,
        "name": STRING,
        "components": LINK,
        "areas": LINK,
        "apps": LINK,
        "functions": LINK,
        "locks": LINK,
        "x-sovdsim-vehicle": obj(
            {
                "vin": STRING,
                "make": STRING,
                "model": STRING,
                "year": INTEGER,
                "fleet": STRING,
                "connection_status": STRING,
            },
            ("vin", "make", "model", "year", "fleet", "connection_status"),
        ),
    },
    ("id", "name", "components", "areas", "apps", "functions"),
)

COMPONENT = obj(
    {
        "id": STRING,
        "name": STRING,
        "variant": obj(
            {
                "name": STRING,
                "logical_address": STRING,
                "state": {"enum": ["Online", "Offline"]},
                "part_number": STRING,
                "software_version": STRING,
                "hardware_number": STRING,
                "supplier": STRING,
            },
            ("name", "logical_address", "state"),
        ),
        "data": LINK,
        "data-categories": LINK,
        "data-groups": LINK,
        "faults": LINK,
        "operations": LINK,
        "configurations": LINK,
        "modes": LINK,
        "locks": LINK,
        "cyclic-subscriptions": LINK,
        "subcomponents": LINK,
        "hosts": LINK,
        "belongs-to": LINK,
    },
    ("id", "name", "data", "faults", "operations", "modes"),
)

AREA = obj(
    {
        "id": STRING,
        "name": STRING,
        "contains": LINK,
        "related-components": LINK,
        "subareas": LINK,
    },
    ("id", "name", "contains"),
)

GENERIC_ERROR = obj(
    {
        "error_code": STRING,
        "message": STRING,
        "vendor_code": STRING,
        "translation_id": STRING,
        "parameters": {"type": "object"},
    },
    ("error_code", "message"),
)
