"""The fleets repository, the same on both stores: recording a fleet makes its vehicle rows
exactly what it has now, in one step, or changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from db.postgres import PostgresStore
from db.repositories import DuplicateKey, FleetRecord, Store, VehicleFilter
from sovd.demo import FORD_F150, VW_GOLF
from sovd.fleet import FleetSpec, build_fleet
from sovd.records import Vehicle
from tests.support.fleets import without_recorded_fleets
from web.vehicles.fleets import vehicle_records

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def fleet_store(store: Store) -> AsyncIterator[Store]:
    async for clean in without_recorded_fleets(store):
        yield clean


def rows(spec: FleetSpec, at: datetime = NOW) -> list[Vehicle]:
    return vehicle_records(spec, build_fleet(spec), at)


def record(spec: FleetSpec, at: datetime = NOW) -> FleetRecord:
    return FleetRecord(spec.name, {"fleets": [{"name": spec.name}]}, spec.count, at, at)


async def fleet_rows(store: Store, name: str) -> list[Vehicle]:
    return (await store.vehicles.list(VehicleFilter(fleet=name, limit=1000))).items


async def test_saving_records_the_fleet_and_its_vehicles(fleet_store: Store) -> None:
    golfs = FleetSpec("golfs", VW_GOLF, 30, seed=1)

    await fleet_store.fleets.save([record(golfs)], rows(golfs))

    (saved,) = await fleet_store.fleets.list()
    assert saved == record(golfs)
    assert sorted(v.vin for v in await fleet_rows(fleet_store, "golfs")) == sorted(
        v.vin for v in rows(golfs)
    )
    assert await fleet_store.vehicles.get(rows(golfs)[0].vehicle_id) == rows(golfs)[0]


async def test_saving_again_is_idempotent(fleet_store: Store) -> None:
    golfs = FleetSpec("golfs", VW_GOLF, 30, seed=1)
    await fleet_store.fleets.save([record(golfs)], rows(golfs))
    before = await fleet_rows(fleet_store, "golfs")

    later = NOW + timedelta(hours=1)
    await fleet_store.fleets.save([record(golfs, later)], rows(golfs, later))

    assert await fleet_rows(fleet_store, "golfs") == before
    (saved,) = await fleet_store.fleets.list()
    assert (saved.created_at, saved.updated_at) == (NOW, later)


async def test_idempotent_saving_writes_no_row_in_postgresql(
    pg_store: PostgresStore,
) -> None:
    async for store in without_recorded_fleets(pg_store):
        golfs = FleetSpec("golfs", VW_GOLF, 50, seed=1)
        await store.fleets.save([record(golfs)], rows(golfs))
        versions = "SELECT vehicle_id, xmin::text FROM vehicles ORDER BY vehicle_id"
        before = await store.pool.fetch(versions)

        await store.fleets.save([record(golfs)], rows(golfs, NOW + timedelta(hours=1)))

        assert await store.pool.fetch(versions) == before


async def test_a_smaller_fleet_loses_its_extra_vehicles(fleet_store: Store) -> None:
    golfs = FleetSpec("golfs", VW_GOLF, 30, seed=1)
    trucks = FleetSpec("trucks", FORD_F150, 5, seed=1)
    await fleet_store.fleets.save([record(golfs), record(trucks)], rows(golfs) + rows(trucks))

    fewer = attrs.evolve(golfs, count=10)
    await fleet_store.fleets.save([record(fewer)], rows(fewer))

    assert {v.vehicle_id for v in await fleet_rows(fleet_store, "golfs")} == {
        v.vehicle_id for v in rows(fewer)
    }
    assert len(await fleet_rows(fleet_store, "trucks")) == 5
    assert {f.vehicle_count for f in await fleet_store.fleets.list()} == {10, 5}


async def test_another_seed_replaces_every_vehicle(fleet_store: Store) -> None:
    golfs = FleetSpec("golfs", VW_GOLF, 10, seed=1)
    await fleet_store.fleets.save([record(golfs)], rows(golfs))

    reseeded = attrs.evolve(golfs, seed=2)
    await fleet_store.fleets.save([record(reseeded)], rows(reseeded))

    assert {v.vin for v in await fleet_rows(fleet_store, "golfs")} == {
        v.vin for v in rows(reseeded)
    }


async def test_a_vin_of_another_fleet_changes_nothing(fleet_store: Store) -> None:
    golfs = FleetSpec("golfs", VW_GOLF, 10, seed=1)
    await fleet_store.fleets.save([record(golfs)], rows(golfs))
    trucks = FleetSpec("trucks", FORD_F150, 3, seed=1)
    clash = [*rows(trucks)[:2], attrs.evolve(rows(trucks)[2], vin=rows(golfs)[4].vin)]

    with pytest.raises(DuplicateKey):
        await fleet_store.fleets.save([record(trucks)], clash)

    assert [f.name for f in await fleet_store.fleets.list()] == ["golfs"]
    assert await fleet_rows(fleet_store, "trucks") == []


async def test_deleting_forgets_the_fleet_and_its_vehicles(fleet_store: Store) -> None:
    golfs = FleetSpec("golfs", VW_GOLF, 10, seed=1)
    trucks = FleetSpec("trucks", FORD_F150, 3, seed=1)
    await fleet_store.fleets.save([record(golfs), record(trucks)], rows(golfs) + rows(trucks))
    await fleet_store.vehicles.upsert_many(rows(FleetSpec("loose", VW_GOLF, 2, seed=9)))

    assert await fleet_store.fleets.delete("golfs") == 10
    assert await fleet_store.fleets.delete("loose") == 2

    assert [f.name for f in await fleet_store.fleets.list()] == ["trucks"]
    assert (await fleet_store.vehicles.list(VehicleFilter())).total == 3


async def test_a_large_save_refreshes_the_planner_statistics(
    pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("db.postgres.VACUUM_AFTER_ROWS", 10)
    vacuumed = "SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'vehicles'"
    async for store in without_recorded_fleets(pg_store):
        before = await store.pool.fetchval(vacuumed)
        golfs = FleetSpec("golfs", VW_GOLF, 20, seed=1)

        await store.fleets.save([record(golfs)], rows(golfs))

        after = await store.pool.fetchval(vacuumed)
        assert after is not None and (before is None or after > before)
