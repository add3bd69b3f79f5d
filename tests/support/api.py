"""Users, logins and small HTTP helpers shared by the API tests."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from aiohttp import web
from aiohttp.test_utils import TestClient
from attrs import frozen

from db.events import EventBus
from db.repositories import Store
from sovd.fleet import VehicleIdentity
from web.auth.accounts import create_user
from web.auth.passwords import PasswordHasher
from web.config import Config

Client = TestClient[web.Request, web.Application]


@frozen
class Backend:
    """The store and bus an API test runs on (see the `backend` fixture)."""

    store: Store
    bus: EventBus


PASSWORDS = {
    "alice": "alice-password-1",
    "bob": "bob-password-22",
    "vera": "vera-password-333",
    "root": "root-password-4444",
}
ROLES = {"alice": "engineer", "bob": "engineer", "vera": "viewer", "root": "admin"}


async def seed_users(store: Store, config: Config) -> dict[str, UUID]:
    hasher = PasswordHasher.from_config(config.auth)
    ids = {}
    for name, password in PASSWORDS.items():
        user = await create_user(
            store,
            hasher,
            username=name,
            password=password,
            role=ROLES[name],  # type: ignore[arg-type]
            email=f"{name}@example.test",
        )
        ids[name] = user.user_id
    return ids


async def token_for(client: Client, name: str) -> str:
    response = await client.post(
        "/api/v1/auth/login", json={"username": name, "password": PASSWORDS[name]}
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    token: str = body["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def command_body(vehicle: VehicleIdentity, name: str = "ReadDTC", **params: Any) -> dict[str, Any]:
    """A POST /api/v1/commands body for the vehicle's first ECU."""
    return {
        "vehicle_id": str(vehicle.vehicle_id),
        "command_name": name,
        "command_params": {"ecuAddress": f"0x{vehicle.profile.ecus[0].address:02X}", **params},
    }
