"""Typed domain errors. The web layer maps each class to one HTTP answer."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from attrs import frozen


class SovdError(Exception):
    """Base of every error sovd-sim raises on purpose."""


@frozen
class FieldError:
    """One problem with one request field; `field` is the wire name, e.g. `ecuAddress`."""

    field: str
    message: str


class UnknownCommand(SovdError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown command {name!r}")
        self.name = name


class InvalidParams(SovdError):
    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(f"{e.field or '(params)'}: {e.message}" for e in self.errors))


class UnknownEcu(InvalidParams):
    """The vehicle has no ECU at the requested address.

    A SOVD server answers 404 for a component it does not have; on a real UDS bus nobody
    would answer at all. So this is a parameter error, raised before the command is
    accepted, not a negative UDS reply.
    """

    def __init__(self, address: int, known: Sequence[int]) -> None:
        self.address = address
        listed = ", ".join(f"0x{a:02X}" for a in known)
        self.message = f"no ECU at 0x{address:02X} on this vehicle (has {listed})"
        super().__init__([FieldError("ecuAddress", self.message)])


class UnknownVehicle(SovdError):
    def __init__(self, vehicle_id: UUID) -> None:
        super().__init__(f"unknown vehicle {vehicle_id}")
        self.vehicle_id = vehicle_id


class DuplicateVehicle(SovdError):
    def __init__(self, vehicle_id: UUID) -> None:
        super().__init__(f"vehicle {vehicle_id} already exists")
        self.vehicle_id = vehicle_id


class VehicleBusy(SovdError):
    """The vehicle's mailbox is full; the client should retry after `retry_after_s`."""

    def __init__(self, vehicle_id: UUID, mailbox_size: int, retry_after_s: float) -> None:
        super().__init__(f"vehicle {vehicle_id} has {mailbox_size} commands waiting")
        self.vehicle_id = vehicle_id
        self.mailbox_size = mailbox_size
        self.retry_after_s = retry_after_s


class SystemStopping(SovdError):
    def __init__(self) -> None:
        super().__init__("the simulator is stopping and accepts no new commands")


class InvalidProfile(SovdError):
    """A profile or fleet description is inconsistent (raised while building it)."""


class UnknownFleet(SovdError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no fleet named {name!r}")
        self.name = name


class FleetConflict(SovdError):
    """The fleet cannot be spawned next to what runs (same name, shared VINs)."""


class FleetBusy(SovdError):
    def __init__(self, name: str, busy: int) -> None:
        super().__init__(
            f"fleet {name!r} has {busy} vehicles with commands running or queued; "
            "retry when they are done"
        )
        self.name, self.busy = name, busy
