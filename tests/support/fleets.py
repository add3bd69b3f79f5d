"""Fleet configs for the tests, and a clean `fleets` table around a test that records some
(the shared store fixtures truncate the other tables, not that one)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from db.postgres import PostgresStore
from db.repositories import Store
from sovd.fleet import VehicleIdentity, build_fleet
from sovd.fleet_config import loads_fleet_config


async def forget_fleets(store: Store) -> None:
    if isinstance(store, PostgresStore):
        await store.pool.execute("TRUNCATE fleets")


async def without_recorded_fleets(store: Store) -> AsyncIterator[Store]:
    """Body of a fixture: no recorded fleet before the test, none left after it."""
    await forget_fleets(store)
    yield store
    await forget_fleets(store)


def vehicles_of(text: str, seed: int = 0) -> list[VehicleIdentity]:
    """The vehicles a fleet config describes, as a server spawns them."""
    config = loads_fleet_config(text, source="test", default_seed=seed)
    return [vehicle for spec in config.fleets for vehicle in build_fleet(spec)]
