"""A SOVD client's walk over one vehicle of each demo fleet, written against the standard's
shapes (ISO 17978-3 as /work/notes/sovd-shapes.md §13 reads it), not against our code.

From `version-info` it follows every link the server advertises, GETs each resource with and
without `include-schema=true`, validates every body against the schema it carries and
against the standard's shape, checks that areas and components name each other both ways,
and that every ECU of the vehicle is reached. It never imports the server's SOVD code."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urljoin

from attrs import define, field

from db.memory import MemoryStore
from sovd.demo import demo_fleets
from tests.support.api import Client, bearer, seed_users, token_for
from tests.support.sovd import on_server, sovd_error, validate, without_schema
from web.config import Config

MakeClient = Callable[..., Awaitable[Client]]

# Collections other parts of the surface will serve; until they do, a link to one may answer
# 404 resource-not-found. Every other advertised link must answer.
NOT_BUILT_YET = {"operations", "modes", "locks", "cyclic-subscriptions"}

STRING: dict[str, Any] = {"type": "string"}
LINK: dict[str, Any] = {"type": "string", "format": "uri-reference"}
STRINGS: dict[str, Any] = {"type": "array", "items": STRING}


def shape(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    """An open object: the standard lets servers add members."""
    return {"type": "object", "properties": properties, "required": list(required)}


def items_of(item: dict[str, Any]) -> dict[str, Any]:
    return shape({"items": {"type": "array", "items": item}}, "items")


VERSION_INFO = shape(
    {
        "sovd_info": {
            "type": "array",
            "minItems": 1,
            "items": shape(
                {"version": STRING, "base_uri": LINK, "vendor_info": {"type": "object"}},
                "version",
                "base_uri",
            ),
        }
    },
    "sovd_info",
)
ENTITY_REFERENCE = shape(
    {"id": STRING, "name": STRING, "href": LINK, "translation_id": STRING, "tags": STRINGS},
    "id",
    "name",
    "href",
)
# discoveredEntityCapabilities: one link per collection the entity supports.
ENTITY_LINKS = (
    "configurations",
    "bulk-data",
    "data",
    "data-lists",
    "faults",
    "operations",
    "updates",
    "modes",
    "subareas",
    "subcomponents",
    "locks",
    "depends-on",
    "hosts",
    "is-located-on",
    "scripts",
    "logs",
    "areas",
    "components",
    "apps",
    "functions",
    "belongs-to",
    "contains",
    "related-components",
    "related-apps",
    "communication-logs",
    "cyclic-subscriptions",
    "triggers",
)
ENTITY = shape(
    {"id": STRING, "name": STRING, "translation_id": STRING} | dict.fromkeys(ENTITY_LINKS, LINK),
    "id",
    "name",
)
STATUS_BITS = (
    "testFailed",
    "testFailedThisOperationCycle",
    "pendingDTC",
    "confirmedDTC",
    "testNotCompletedSinceLastClear",
    "testFailedSinceLastClear",
    "testNotCompletedThisOperationCycle",
    "warningIndicatorRequested",
)
FAULT = shape(
    {
        "code": STRING,
        "fault_name": STRING,
        "display_code": STRING,
        "fault_translation_id": STRING,
        "scope": STRING,
        "severity": {"type": "integer", "minimum": 1, "maximum": 4},
        "status": shape(
            {bit: {"enum": ["0", "1"]} for bit in STATUS_BITS}
            | {
                "mask": {"type": "string", "pattern": "^[0-9A-F]{2}$"},
                "aggregatedStatus": {"enum": ["active", "passive", "cleared"]},
            }
        ),
        "tags": STRINGS,
    },
    "code",
    "fault_name",
)
DATA_RECORDS = shape({"data": {"type": "object"}, "errors": {"type": "array"}})
FAULT_DETAIL = shape(
    {
        "item": FAULT,
        "environment_data": shape(
            {"extended_data_records": DATA_RECORDS, "snapshots": DATA_RECORDS}
        ),
        "errors": {"type": "array"},
    },
    "item",
)
CATEGORY = {
    "anyOf": [{"enum": ["identData", "currentData", "storedData", "sysInfo"]}, {"pattern": "^x-"}]
}
VALUE_METADATA = shape(
    {"id": STRING, "name": STRING, "category": CATEGORY, "groups": STRINGS, "tags": STRINGS},
    "id",
    "name",
    "category",
)
READ_VALUE = shape({"id": STRING, "data": {}, "errors": {"type": "array"}}, "id", "data")
CONFIGURATION = shape(
    {"id": STRING, "name": STRING, "type": {"enum": ["parameter", "bulk"]}}, "id", "name", "type"
)

ID = r"[^/]+"
SHAPES: list[tuple[re.Pattern[str], dict[str, Any]]] = [
    (re.compile(pattern), schema)
    for pattern, schema in (
        (r"/?", ENTITY),
        (r"/(components|areas|apps|functions)", items_of(ENTITY_REFERENCE)),
        (rf"/(components|areas|apps|functions)/{ID}", ENTITY),
        (
            rf"/components/{ID}/(subcomponents|hosts|belongs-to|related-apps)",
            items_of(ENTITY_REFERENCE),
        ),
        (rf"/areas/{ID}/(contains|related-components|subareas)", items_of(ENTITY_REFERENCE)),
        (rf"/components/{ID}/faults", items_of(FAULT)),
        (rf"/components/{ID}/faults/{ID}", FAULT_DETAIL),
        (rf"/components/{ID}/data", items_of(VALUE_METADATA)),
        (rf"/components/{ID}/data-categories", items_of(shape({"item": CATEGORY}, "item"))),
        (rf"/components/{ID}/data-groups", items_of(shape({"id": STRING}, "id", "category"))),
        (rf"/components/{ID}/(data|configurations)/{ID}", READ_VALUE),
        (rf"/components/{ID}/configurations", items_of(CONFIGURATION)),
    )
]
GENERIC = shape({"items": {"type": "array"}})


def standard_shape(relative: str) -> dict[str, Any]:
    """The standard's shape for the resource at this path (relative to base_uri)."""
    return next((s for pattern, s in SHAPES if pattern.fullmatch(relative)), GENERIC)


@define
class Walk:
    base: str
    bodies: dict[str, Any] = field(factory=dict)
    not_built: list[str] = field(factory=list)
    needs_other_method: list[str] = field(factory=list)

    def links(self, url: str, body: Any) -> Iterator[str]:
        """Every absolute URL under base_uri in the body, and every `href` of its items."""
        if isinstance(body, dict):
            for name, value in body.items():
                if name == "href" and isinstance(value, str):
                    yield urljoin(url, value)
                elif name != "schema":
                    yield from self.links(url, value)
        elif isinstance(body, list):
            for value in body:
                yield from self.links(url, value)
        elif isinstance(body, str) and (body == self.base or body.startswith(self.base + "/")):
            yield body

    def of_kind(self, pattern: str) -> dict[str, Any]:
        kind = re.compile(re.escape(self.base) + pattern)
        return {url: body for url, body in self.bodies.items() if kind.fullmatch(url)}


async def walk(client: Client, token: str, vehicle_id: str) -> Walk:
    response = await client.get(f"/vehicles/{vehicle_id}/sovd/version-info")
    assert response.status == 200, await response.text()
    info = await response.json()
    validate(info, VERSION_INFO)
    (entry,) = info["sovd_info"]
    described = await client.get(f"/vehicles/{vehicle_id}/sovd/version-info?include-schema=true")
    assert without_schema(await described.json()) == info

    state = Walk(entry["base_uri"].rstrip("/"))
    queue = [entry["base_uri"]]
    seen = set(queue)
    while queue:
        url = queue.pop(0)
        path = on_server(client, url)
        response = await client.get(path, headers=bearer(token))
        if response.status == 404:
            await sovd_error(response, 404, "vendor-specific", "resource-not-found")
            state.not_built.append(url)
            continue
        if response.status == 405:
            await sovd_error(response, 405, "vendor-specific", "method-not-allowed")
            state.needs_other_method.append(url)
            continue
        assert response.status == 200, f"{url}: {await response.text()}"
        assert response.content_type == "application/json", url
        body = await response.json()
        assert isinstance(body, dict) and "schema" not in body, url
        joiner = "&" if "?" in path else "?"
        described = await client.get(f"{path}{joiner}include-schema=true", headers=bearer(token))
        assert described.status == 200, f"{url}: {await described.text()}"
        assert set(without_schema(await described.json())) == set(body), url
        validate(body, standard_shape(url.removeprefix(state.base)))
        state.bodies[url] = body
        for link in state.links(url, body):
            assert link == state.base or link.startswith(state.base + "/"), (url, link)
            if link not in seen:
                seen.add(link)
                queue.append(link)
    return state


def check_references(state: Walk) -> None:
    """A reference names what its href answers with."""
    for url, body in state.bodies.items():
        for item in body.get("items", ()):
            if not isinstance(item, dict) or "href" not in item:
                continue
            target = state.bodies.get(urljoin(url, item["href"]))
            if target is None:
                continue
            if "item" in target:
                assert target["item"]["code"] == item["code"], item
            else:
                assert target["id"] == item["id"], item
                if "name" in target:
                    assert target["name"] == item["name"], item


def check_areas_and_components(state: Walk) -> None:
    areas = state.of_kind(r"/areas/[^/]+")
    components = state.of_kind(r"/components/[^/]+")
    assert areas and components
    from_areas = {
        (area_url, member["href"])
        for area_url, area in areas.items()
        for member in state.bodies[area["contains"]]["items"]
    }
    from_components = {
        (owner["href"], component_url)
        for component_url, component in components.items()
        for owner in state.bodies[component["belongs-to"]]["items"]
    }
    assert from_areas == from_components
    assert {c for _, c in from_areas} == set(components), "a component in no area"


async def test_a_client_reaches_every_ecu_of_every_demo_profile_by_links_alone(
    make_client: MakeClient, config: Config
) -> None:
    store = MemoryStore()
    await seed_users(store, config)
    client = await make_client(store=store)
    token = await token_for(client, "vera")
    vehicles = await (await client.get("/api/v1/vehicles", headers=bearer(token))).json()
    fleets = {spec.name: spec.profile for spec in demo_fleets()}
    chosen = {}
    for vehicle in vehicles:
        chosen.setdefault(vehicle["metadata"]["fleet"], vehicle["vehicle_id"])
    assert set(chosen) == set(fleets)

    walks = await asyncio.gather(*(walk(client, token, vid) for vid in chosen.values()))

    for (fleet, vehicle_id), state in zip(chosen.items(), walks, strict=True):
        skipped = Counter(url.rsplit("/", 1)[-1] for url in state.not_built)
        print(
            f"{fleet}: {len(state.bodies)} resources read; {len(state.not_built)} links to "
            f"collections not served yet {dict(sorted(skipped.items()))}; "
            f"{len(state.needs_other_method)} need another method"
        )
        assert set(skipped) <= NOT_BUILT_YET, state.not_built
        assert state.needs_other_method == []
        check_references(state)
        check_areas_and_components(state)
        components = state.of_kind(r"/components/[^/]+")
        for component_url in components:
            for resource in ("faults", "data", "data-categories", "data-groups"):
                assert f"{component_url}/{resource}" in state.bodies, component_url
        reached = {body["variant"]["logical_address"] for body in components.values()}
        details = await (
            await client.get(f"/api/v1/vehicles/{vehicle_id}", headers=bearer(token))
        ).json()
        assert reached == {ecu["ecu_address"] for ecu in details["ecus"]}
        assert reached == {f"0x{ecu.address:02X}" for ecu in fleets[fleet].ecus}
