"""One contract, two stores: every test runs on the in-memory store and on real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.repositories import (
    AuditFilter,
    CommandFilter,
    DuplicateKey,
    FleetRecord,
    SovdLock,
    StatusChange,
    Store,
    StoredState,
    VehicleFilter,
    WriteBatch,
)
from sovd.records import AuditEntry, Command, RefreshSession, Response, User, Vehicle

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def a_user(name: str = "alice", role: str = "engineer") -> User:
    return User(
        user_id=uuid.uuid4(),
        username=name,
        password_hash="$scrypt$not-a-real-hash",
        role=role,  # type: ignore[arg-type]
        email=f"{name}@example.com",
        created_at=NOW,
    )


def a_vehicle(vin: str, status: str = "connected", fleet: str = "demo") -> Vehicle:
    return Vehicle(
        vehicle_id=uuid.uuid5(uuid.NAMESPACE_OID, vin),
        vin=vin,
        make="Volkswagen",
        model="ID.4",
        year=2023,
        connection_status=status,  # type: ignore[arg-type]
        last_seen_at=NOW,
        fleet=fleet,
        metadata={"profile": "ev", "ecus": 3},
    )


def a_command(user: User, vehicle: Vehicle, minutes: int = 0, **changes: object) -> Command:
    fields: dict[str, object] = {
        "command_id": uuid.uuid4(),
        "user_id": user.user_id,
        "vehicle_id": vehicle.vehicle_id,
        "command_name": "ReadDTC",
        "command_params": {"ecuAddress": "0x10"},
        "status": "pending",
        "submitted_at": NOW + timedelta(minutes=minutes),
    }
    fields.update(changes)
    return Command(**fields)  # type: ignore[arg-type]


VINS = ["WVWZZZ1JZ3W386752", "1HGCM82633A004352", "5YJ3E1EA7KF317000", "WBA3A5C51CF256985"]


async def test_users_round_trip_and_unique_names(store: Store) -> None:
    alice = a_user()
    await store.users.add(alice)
    assert await store.users.get(alice.user_id) == alice
    assert await store.users.get_by_username("alice") == alice
    assert await store.users.get_by_username("bob") is None
    assert await store.users.count() == 1
    with pytest.raises(DuplicateKey):
        await store.users.add(a_user("alice"))


async def test_sessions_rotate_once_and_revoke_by_family(store: Store) -> None:
    alice = a_user()
    await store.users.add(alice)
    family = uuid.uuid4()
    first = RefreshSession(
        session_id=uuid.uuid4(),
        user_id=alice.user_id,
        family_id=family,
        refresh_token_hash="hash-1",
        created_at=NOW,
        expires_at=NOW + timedelta(days=7),
    )
    await store.sessions.add(first)
    assert await store.sessions.get_by_token_hash("hash-1") == first
    assert await store.sessions.mark_rotated(first.session_id, NOW) is True
    assert await store.sessions.mark_rotated(first.session_id, NOW) is False
    second = RefreshSession(
        session_id=uuid.uuid4(),
        user_id=alice.user_id,
        family_id=family,
        refresh_token_hash="hash-2",
        created_at=NOW,
        expires_at=NOW + timedelta(days=7),
    )
    await store.sessions.add(second)
    assert not await store.sessions.is_family_revoked(family)
    assert await store.sessions.revoke_family(family, NOW) == 2
    assert await store.sessions.is_family_revoked(family)
    revoked = await store.sessions.get_by_token_hash("hash-2")
    assert revoked is not None and revoked.revoked_at == NOW


async def test_vehicle_upsert_is_idempotent_and_lists_in_stable_order(store: Store) -> None:
    vehicles = [a_vehicle(vin) for vin in VINS]
    await store.vehicles.upsert_many(vehicles)
    await store.vehicles.upsert_many(vehicles)
    page = await store.vehicles.list(VehicleFilter(limit=10))
    assert page.total == 4
    assert [v.vin for v in page.items] == sorted(VINS)
    assert page.items[0].metadata == {"profile": "ev", "ecus": 3}
    assert await store.vehicles.get(vehicles[0].vehicle_id) == vehicles[0]


async def test_vehicle_filters_and_pagination(store: Store) -> None:
    await store.vehicles.upsert_many(
        [a_vehicle(VINS[0]), a_vehicle(VINS[1], "disconnected"), a_vehicle(VINS[2], fleet="b")]
    )
    offline = await store.vehicles.list(VehicleFilter(status="disconnected"))
    assert [v.vin for v in offline.items] == [VINS[1]]
    by_vin = await store.vehicles.list(VehicleFilter(search="3w38"))
    assert [v.vin for v in by_vin.items] == [VINS[0]]
    literal = await store.vehicles.list(VehicleFilter(search="%"))
    assert literal.total == 0
    second = await store.vehicles.list(VehicleFilter(limit=1, offset=1))
    assert second.total == 3 and [v.vin for v in second.items] == [sorted(VINS[:3])[1]]
    assert await store.vehicles.delete_fleet("b") == 1
    assert (await store.vehicles.list(VehicleFilter())).total == 2


async def test_vin_belongs_to_one_vehicle(store: Store) -> None:
    await store.vehicles.upsert_many([a_vehicle(VINS[0])])
    imposter = Vehicle(
        vehicle_id=uuid.uuid4(),
        vin=VINS[0],
        make="X",
        model="Y",
        year=2020,
        connection_status="connected",
        last_seen_at=None,
    )
    with pytest.raises(DuplicateKey):
        await store.vehicles.upsert_many([imposter])


async def test_commands_list_newest_first_with_filters(store: Store) -> None:
    alice, bob = a_user("alice"), a_user("bob")
    for user in (alice, bob):
        await store.users.add(user)
    car, van = a_vehicle(VINS[0]), a_vehicle(VINS[1])
    await store.vehicles.upsert_many([car, van])
    commands = [
        a_command(alice, car, 0),
        a_command(alice, van, 1),
        a_command(bob, car, 2),
        a_command(bob, van, 3, status="failed", error_message="NRC 0x31", completed_at=NOW),
    ]
    for command in commands:
        await store.commands.add(command)

    everything = await store.commands.list(CommandFilter())
    assert everything.total == 4
    assert [c.command_id for c in everything.items] == [c.command_id for c in commands[::-1]]
    mine = await store.commands.list(CommandFilter(user_id=alice.user_id))
    assert {c.command_id for c in mine.items} == {commands[0].command_id, commands[1].command_id}
    failed = await store.commands.list(CommandFilter(status="failed"))
    assert [c.error_message for c in failed.items] == ["NRC 0x31"]
    window = await store.commands.list(
        CommandFilter(start_date=NOW + timedelta(minutes=1), end_date=NOW + timedelta(minutes=2))
    )
    assert [c.command_id for c in window.items] == [commands[2].command_id, commands[1].command_id]
    paged = await store.commands.list(CommandFilter(vehicle_id=car.vehicle_id, limit=1, offset=1))
    assert paged.total == 2 and paged.items[0].command_id == commands[0].command_id
    assert (await store.commands.get(commands[0].command_id)) == commands[0]


async def test_command_status_and_responses(store: Store) -> None:
    alice, car = a_user(), a_vehicle(VINS[0])
    await store.users.add(alice)
    await store.vehicles.upsert_many([car])
    command = a_command(alice, car)
    await store.commands.add(command)
    with pytest.raises(DuplicateKey):
        await store.commands.add(command)

    assert await store.commands.set_status(command.command_id, "in_progress")
    done_at = NOW + timedelta(seconds=1)
    assert await store.commands.set_status(command.command_id, "completed", completed_at=done_at)
    stored = await store.commands.get(command.command_id)
    assert stored is not None and stored.status == "completed" and stored.completed_at == done_at
    assert not await store.commands.set_status(uuid.uuid4(), "completed", completed_at=done_at)

    chunks = [
        Response(uuid.uuid4(), command.command_id, {"progress": n}, n, n == 2, NOW) for n in (2, 1)
    ]
    await store.responses.add_many(chunks)
    listed = await store.responses.list_for_command(command.command_id)
    assert [(r.sequence_number, r.is_final, r.response_payload) for r in listed] == [
        (1, False, {"progress": 1}),
        (2, True, {"progress": 2}),
    ]
    with pytest.raises(DuplicateKey):
        await store.responses.add_many([chunks[0]])


async def test_one_batch_holds_a_whole_command_life(store: Store) -> None:
    """A command, its status changes, its reply and its audit entry in one batch: the stored
    command ends in the last status, whatever the store does to write it in one go."""
    alice, car = a_user(), a_vehicle(VINS[0])
    await store.users.add(alice)
    await store.vehicles.upsert_many([car])
    earlier = a_command(alice, car)
    await store.commands.add(earlier)
    command = a_command(alice, car, minutes=1)
    done_at = NOW + timedelta(minutes=1, seconds=1)
    entry = AuditEntry(
        log_id=uuid.uuid4(),
        action="command_completed",
        entity_type="command",
        timestamp=done_at,
        user_id=alice.user_id,
        vehicle_id=car.vehicle_id,
        command_id=command.command_id,
    )
    await store.write_batch(
        WriteBatch(
            new_commands=[command],
            status_changes=[
                StatusChange(command.command_id, "in_progress"),
                StatusChange(earlier.command_id, "failed", "ECU asleep", done_at),
                StatusChange(command.command_id, "completed", None, done_at),
            ],
            responses=[Response(uuid.uuid4(), command.command_id, {"dtcs": []}, 1, True, NOW)],
            audit=[entry],
        )
    )
    stored = await store.commands.get(command.command_id)
    assert stored is not None
    assert (stored.status, stored.completed_at) == ("completed", done_at)
    other = await store.commands.get(earlier.command_id)
    assert other is not None
    assert (other.status, other.error_message) == ("failed", "ECU asleep")
    listed = await store.responses.list_for_command(command.command_id)
    assert [r.response_payload for r in listed] == [{"dtcs": []}]
    audit = await store.audit.list(AuditFilter(action="command_completed"))
    assert [e.command_id for e in audit.items] == [command.command_id]


async def test_audit_entries_keep_ids_of_things_since_gone(store: Store) -> None:
    """The audit log is a record: it holds ids that name nothing (any more)."""
    gone = uuid.uuid4()
    entry = AuditEntry(
        log_id=uuid.uuid4(),
        action="command_completed",
        entity_type="command",
        timestamp=NOW,
        user_id=uuid.uuid4(),
        vehicle_id=uuid.uuid4(),
        command_id=gone,
        entity_id=gone,
    )
    await store.write_batch(WriteBatch(audit=[entry]))
    assert (await store.audit.list(AuditFilter())).items[0].command_id == gone


async def test_audit_entries_newest_first(store: Store) -> None:
    alice = a_user()
    await store.users.add(alice)
    entries = [
        AuditEntry(
            log_id=uuid.uuid4(),
            action=action,
            entity_type="user",
            timestamp=NOW + timedelta(seconds=n),
            user_id=alice.user_id,
            details={"n": n},
            ip_address="127.0.0.1",
        )
        for n, action in enumerate(["user_login", "user_logout", "user_login"])
    ]
    await store.audit.add_many(entries)
    logins = await store.audit.list(AuditFilter(action="user_login"))
    assert logins.total == 2
    assert [e.details for e in logins.items] == [{"n": 2}, {"n": 0}]
    assert (await store.audit.list(AuditFilter(limit=1))).items[0].action == "user_login"


async def test_idempotency_key_holds_one_command(store: Store) -> None:
    alice, car = a_user(), a_vehicle(VINS[0])
    await store.users.add(alice)
    await store.vehicles.upsert_many([car])
    first, second = a_command(alice, car), a_command(alice, car)
    assert await store.commands.add_idempotent(first, "key-1", "hash-a") is None
    held = await store.commands.add_idempotent(second, "key-1", "hash-b")
    assert held is not None
    assert (held.request_hash, held.command_id) == ("hash-a", first.command_id)
    assert await store.commands.get(second.command_id) is None
    assert await store.commands.find_idempotent(alice.user_id, "key-1") == held
    assert await store.commands.find_idempotent(alice.user_id, "key-2") is None


async def test_unfinished_commands_oldest_first(store: Store) -> None:
    alice, car = a_user(), a_vehicle(VINS[0])
    await store.users.add(alice)
    await store.vehicles.upsert_many([car])
    pending = a_command(alice, car, 2)
    running = a_command(alice, car, 1, status="in_progress")
    done = a_command(alice, car, 0, status="completed", completed_at=NOW)
    for command in (pending, running, done):
        await store.commands.add(command)
    unfinished = await store.commands.list_unfinished()
    assert [c.command_id for c in unfinished] == [running.command_id, pending.command_id]


async def test_pending_commands_submitted_before_a_moment_oldest_first(store: Store) -> None:
    alice, car = a_user(), a_vehicle(VINS[0])
    await store.users.add(alice)
    await store.vehicles.upsert_many([car])
    older, old, recent = (a_command(alice, car, m) for m in (1, 2, 5))
    running = a_command(alice, car, 0, status="in_progress")
    done = a_command(alice, car, 0, status="failed", completed_at=NOW)
    for command in (recent, old, running, done, older):
        await store.commands.add(command)
    found = await store.commands.list_pending_before(NOW + timedelta(minutes=3))
    assert [c.command_id for c in found] == [older.command_id, old.command_id]
    assert await store.commands.list_pending_before(NOW) == []


async def test_commands_matching_name_and_params_newest_first_without_dismissed(
    store: Store,
) -> None:
    alice = a_user()
    await store.users.add(alice)
    car, van = a_vehicle(VINS[0]), a_vehicle(VINS[1])
    await store.vehicles.upsert_many([car, van])
    self_test = {"ecuAddress": "0x01", "routineId": "0x0203"}

    def routine(vehicle: Vehicle, minutes: int, **params: str) -> Command:
        return a_command(
            alice, vehicle, minutes, command_name="RoutineControl", command_params=params
        )

    older, first, second = (routine(car, m, **self_test) for m in (0, 1, 2))
    others = [
        routine(car, 3, ecuAddress="0x01", routineId="0xFF01"),
        routine(car, 4, ecuAddress="0x02", routineId="0x0203"),
        routine(van, 5, **self_test),
        a_command(alice, car, 6, command_params={"ecuAddress": "0x01"}),
    ]
    for command in (older, first, second, *others):
        await store.commands.add(command)
    since = NOW + timedelta(minutes=1)

    async def matching(limit: int = 10) -> list[uuid.UUID]:
        found = await store.commands.list_matching(
            car.vehicle_id, "RoutineControl", self_test, since, limit
        )
        return [c.command_id for c in found]

    assert await matching() == [second.command_id, first.command_id]
    assert await matching(limit=1) == [second.command_id]
    found = await store.commands.list_matching(
        car.vehicle_id, "RoutineControl", {"ecuAddress": "0x01"}, NOW, 10
    )
    assert [c.command_id for c in found] == [
        others[0].command_id,
        second.command_id,
        first.command_id,
        older.command_id,
    ]

    assert not await store.commands.is_dismissed(second.command_id)
    assert await store.commands.dismiss(second.command_id, NOW)
    assert not await store.commands.dismiss(second.command_id, NOW), "dismissed once"
    assert not await store.commands.dismiss(uuid.uuid4(), NOW)
    assert await store.commands.is_dismissed(second.command_id)
    assert not await store.commands.is_dismissed(uuid.uuid4())
    assert await matching() == [first.command_id]

    # The command stays on record, and its later status changes keep it dismissed.
    done = StatusChange(second.command_id, "completed", None, NOW + timedelta(minutes=3))
    await store.write_batch(WriteBatch(status_changes=[done]))
    stored = await store.commands.get(second.command_id)
    assert stored is not None and stored.status == "completed"
    assert await store.commands.is_dismissed(second.command_id)
    assert await matching() == [first.command_id]
    assert (await store.commands.list(CommandFilter(vehicle_id=car.vehicle_id))).total == 6


def a_lock(
    vehicle: Vehicle, owner: User, seconds: int = 60, entity: str = "components/engine"
) -> SovdLock:
    return SovdLock(
        uuid.uuid4(), vehicle.vehicle_id, entity, owner.user_id, NOW + timedelta(seconds=seconds)
    )


async def test_a_lock_has_one_owner_until_it_expires(store: Store) -> None:
    alice, bob, car = a_user("alice"), a_user("bob"), a_vehicle(VINS[0])
    await store.vehicles.upsert_many([car])
    wanted = a_lock(car, alice)
    held = await store.locks.acquire(wanted, NOW)
    assert held == wanted
    assert await store.locks.get(car.vehicle_id, wanted.lock_id, NOW) == wanted
    assert await store.locks.acquire(a_lock(car, bob), NOW) is None
    assert await store.locks.held(car.vehicle_id, ["components/engine", "vehicle"], NOW) == [held]

    later = NOW + timedelta(seconds=60)  # the moment it expires
    assert await store.locks.get(car.vehicle_id, wanted.lock_id, later) is None
    assert await store.locks.held(car.vehicle_id, ["components/engine"], later) == []
    taken = a_lock(car, bob, seconds=120)
    assert await store.locks.acquire(taken, later) == taken
    assert await store.locks.get(car.vehicle_id, wanted.lock_id, later) is None


async def test_the_owner_extends_its_lock_under_the_same_id(store: Store) -> None:
    alice, car = a_user("alice"), a_vehicle(VINS[0])
    await store.vehicles.upsert_many([car])
    first = a_lock(car, alice, seconds=10)
    await store.locks.acquire(first, NOW)
    again = await store.locks.acquire(a_lock(car, alice, seconds=300), NOW)
    assert again is not None
    assert (again.lock_id, again.expires_at) == (first.lock_id, NOW + timedelta(seconds=300))

    moved = NOW + timedelta(seconds=30)
    assert await store.locks.extend(car.vehicle_id, first.lock_id, alice.user_id, moved, NOW)
    stored = await store.locks.get(car.vehicle_id, first.lock_id, NOW)
    assert stored is not None and stored.expires_at == moved
    assert not await store.locks.extend(car.vehicle_id, first.lock_id, uuid.uuid4(), moved, NOW)
    assert not await store.locks.extend(car.vehicle_id, uuid.uuid4(), alice.user_id, moved, NOW)
    assert not await store.locks.extend(car.vehicle_id, first.lock_id, alice.user_id, moved, moved)

    expired = await store.locks.acquire(a_lock(car, alice), moved)
    assert expired is not None and expired.lock_id != first.lock_id


async def test_breaking_a_lock_gives_it_a_new_owner_and_id(store: Store) -> None:
    alice, root, car = a_user("alice"), a_user("root", "admin"), a_vehicle(VINS[0])
    await store.vehicles.upsert_many([car])
    held = a_lock(car, alice)
    await store.locks.acquire(held, NOW)
    broken = a_lock(car, root)
    assert await store.locks.acquire(broken, NOW, break_lock=True) == broken
    assert await store.locks.get(car.vehicle_id, held.lock_id, NOW) is None
    assert await store.locks.held(car.vehicle_id, ["components/engine"], NOW) == [broken]


async def test_locks_are_per_vehicle_and_entity(store: Store) -> None:
    alice, bob = a_user("alice"), a_user("bob")
    car, van = a_vehicle(VINS[0]), a_vehicle(VINS[1])
    await store.vehicles.upsert_many([car, van])
    engine = a_lock(car, alice)
    whole_car = a_lock(car, bob, entity="vehicle")
    van_engine = a_lock(van, bob)
    for lock in (engine, whole_car, van_engine):
        assert await store.locks.acquire(lock, NOW) == lock
    held = await store.locks.held(car.vehicle_id, ["vehicle", "components/engine"], NOW)
    assert sorted(held, key=lambda lock: lock.entity) == [engine, whole_car]
    assert await store.locks.held(car.vehicle_id, ["components/brakes"], NOW) == []
    assert await store.locks.get(van.vehicle_id, engine.lock_id, NOW) is None


async def test_releasing_a_lock(store: Store) -> None:
    alice, bob, car = a_user("alice"), a_user("bob"), a_vehicle(VINS[0])
    await store.vehicles.upsert_many([car])
    lock = a_lock(car, alice)
    await store.locks.acquire(lock, NOW)
    assert not await store.locks.release(car.vehicle_id, lock.lock_id, NOW, bob.user_id)
    assert await store.locks.release(car.vehicle_id, lock.lock_id, NOW, alice.user_id)
    assert not await store.locks.release(car.vehicle_id, lock.lock_id, NOW, alice.user_id)
    assert await store.locks.get(car.vehicle_id, lock.lock_id, NOW) is None

    another = a_lock(car, alice)
    await store.locks.acquire(another, NOW)
    assert await store.locks.release(car.vehicle_id, another.lock_id, NOW)  # anyone's
    assert await store.locks.acquire(a_lock(car, bob), NOW) is not None


async def test_concurrent_acquisitions_have_one_winner(store: Store) -> None:
    users = [a_user(f"user{n}") for n in range(6)]
    car = a_vehicle(VINS[0])
    await store.vehicles.upsert_many([car])
    attempts = [a_lock(car, user) for user in users]
    results = await asyncio.gather(*(store.locks.acquire(lock, NOW) for lock in attempts))
    winners = [lock for lock in results if lock is not None]
    assert len(winners) == 1
    assert await store.locks.held(car.vehicle_id, ["components/engine"], NOW) == winners


async def test_a_deleted_vehicle_takes_its_locks_along(store: Store) -> None:
    alice, car, van = a_user("alice"), a_vehicle(VINS[0]), a_vehicle(VINS[1], fleet="vans")
    await store.fleets.save([FleetRecord("vans", {"fleets": []}, 1, NOW, NOW)], [van])
    await store.vehicles.upsert_many([car])
    car_lock, van_lock = a_lock(car, alice), a_lock(van, alice)
    await store.locks.acquire(car_lock, NOW)
    await store.locks.acquire(van_lock, NOW)
    await store.fleets.delete("vans")
    assert await store.locks.get(van.vehicle_id, van_lock.lock_id, NOW) is None
    assert await store.locks.get(car.vehicle_id, car_lock.lock_id, NOW) == car_lock
    # The same vehicle spawned again starts without locks.
    await store.vehicles.upsert_many([van])
    assert await store.locks.held(van.vehicle_id, ["components/engine"], NOW) == []


async def test_a_vehicle_keeps_the_last_state_written_with_a_batch(store: Store) -> None:
    car, van = a_vehicle(VINS[0]), a_vehicle(VINS[1])
    await store.vehicles.upsert_many([car, van])
    assert await store.vehicle_states.get(car.vehicle_id) is None

    await store.write_batch(
        WriteBatch(
            vehicle_states=[
                StoredState(car.vehicle_id, {"step": 1}, NOW),
                StoredState(car.vehicle_id, {"step": 2}, NOW + timedelta(seconds=1)),
            ]
        )
    )
    await store.write_batch(
        WriteBatch(vehicle_states=[StoredState(van.vehicle_id, {"step": 3, "nested": [1]}, NOW)])
    )

    assert await store.vehicle_states.get(car.vehicle_id) == {"step": 2}
    assert await store.vehicle_states.get(van.vehicle_id) == {"step": 3, "nested": [1]}
    stateless = a_vehicle(VINS[2])
    await store.vehicles.upsert_many([stateless])
    assert await store.vehicle_states.get_many(
        [car.vehicle_id, van.vehicle_id, stateless.vehicle_id, uuid.uuid4()]
    ) == {car.vehicle_id: {"step": 2}, van.vehicle_id: {"step": 3, "nested": [1]}}
    assert await store.vehicle_states.get_many([]) == {}
