"""Fleets and vehicle identities, built deterministically from a seed.

`build_identity(fleet, index)` is a pure function: the same fleet description and index
give the same `vehicle_id`, VIN and model year on every run and every machine, so a
restarted simulator finds its vehicles again in the database.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta
from typing import Any, Literal
from uuid import UUID

from attrs import field, frozen

from sovd.errors import InvalidProfile
from sovd.profiles import Connectivity, EcuProfile, FailureModes, VehicleProfile
from sovd.records import ConnectionStatus

VEHICLE_NAMESPACE = UUID("8f475691-5d25-4014-a8df-385a0f33917d")
MAX_FLEET_SIZE = 1_000_000

_VIN_PREFIX = re.compile(r"[A-HJ-NPR-Z0-9]{3,8}")
_FLEET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")

# ISO 3779 / 49 CFR 565: letter values and position weights for the check digit.
_TRANSLITERATION = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
# Position 10 encodes the model year in a 30-year cycle; 2010 is "A" again.
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"
# RFC 4122 version (4 bits) and variant (2 bits) of a name-based SHA-1 UUID.
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & (2**128 - 1)
_UUID5_SET = (5 << 76) | (0x8000 << 48)


def vin_check_digit(vin: str) -> str:
    """The check digit (position 9) of a 17-character VIN; position 9 itself is ignored."""
    if len(vin) != 17:
        raise ValueError(f"a VIN has 17 characters, got {len(vin)}")
    total = sum(_TRANSLITERATION[c] * w for c, w in zip(vin, _WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def _serial_weight_table(weights: tuple[int, int, int]) -> tuple[int, ...]:
    """Weighted digit sums of 000..999 for three VIN positions (all digits)."""
    return tuple(
        sum(int(digit) * weight for digit, weight in zip(f"{n:03d}", weights, strict=True))
        for n in range(1000)
    )


# Positions 12-17 hold the serial number, which alone varies inside a fleet.
_SERIAL_HIGH = _serial_weight_table(_WEIGHTS[11:14])
_SERIAL_LOW = _serial_weight_table(_WEIGHTS[14:17])


def model_year_code(year: int) -> str:
    if not 2010 <= year <= 2039:
        raise ValueError(f"model year {year} is outside 2010..2039")
    return _YEAR_CODES[year - 2010]


LatencyDistribution = Literal["uniform", "normal", "lognormal"]


@frozen
class LatencyRange:
    """Simulated network latency in seconds, never outside `min_s..max_s`.

    `uniform` between the bounds; `normal` around the mean `center_s` with standard
    deviation `spread` (seconds); `lognormal` around the median `center_s` with shape
    `spread` (sigma). Samples beyond a bound are clamped to it.
    """

    min_s: float
    max_s: float
    distribution: LatencyDistribution = "uniform"
    center_s: float | None = None
    spread: float | None = None

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.min_s <= self.max_s:
            raise InvalidProfile(f"latency needs 0 <= min <= max, got {self.min_s}..{self.max_s}")
        if self.distribution == "uniform":
            return
        if self.distribution not in ("normal", "lognormal"):
            raise InvalidProfile(f"unknown latency distribution {self.distribution!r}")
        if self.center_s is None or not self.min_s <= self.center_s <= self.max_s:
            raise InvalidProfile(f"{self.distribution} latency needs min <= center <= max")
        if self.spread is None or self.spread <= 0:
            raise InvalidProfile(f"{self.distribution} latency needs a spread > 0")
        if self.distribution == "lognormal" and self.center_s <= 0:
            raise InvalidProfile("lognormal latency needs a median > 0")


@frozen
class FleetSpec:
    """`count` vehicles of one profile. `vin_prefix` (3-8 VIN characters) replaces the
    start of the profile's WMI + VDS; `failure_modes`, `connectivity` and `latency`
    override the profile's and the simulator's defaults, `command_deadline_s` and
    `mailbox_size` the actor system's."""

    name: str
    profile: VehicleProfile
    count: int
    seed: int = 0
    vin_prefix: str | None = None
    latency: LatencyRange | None = None
    failure_modes: FailureModes | None = None
    connectivity: Connectivity | None = None
    command_deadline_s: float | None = None
    mailbox_size: int | None = None
    _vin_head: str = field(init=False, repr=False, eq=False)
    _head_sum: int = field(init=False, repr=False, eq=False)
    _serial_base: int = field(init=False, repr=False, eq=False)
    _years: tuple[int, ...] = field(init=False, repr=False, eq=False)
    _id_prefix: bytes = field(init=False, repr=False, eq=False)
    effective_failure_modes: FailureModes = field(init=False, repr=False, eq=False)
    effective_connectivity: Connectivity = field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if not _FLEET_NAME.fullmatch(self.name):
            raise InvalidProfile(f"fleet name {self.name!r}: letters, digits, '_', '.', '-'")
        if not 0 <= self.count <= MAX_FLEET_SIZE:
            raise InvalidProfile(f"fleet {self.name}: count must be 0..{MAX_FLEET_SIZE}")
        if self.command_deadline_s is not None and not self.command_deadline_s > 0:
            raise InvalidProfile(f"fleet {self.name}: command_deadline_s must be > 0")
        if self.mailbox_size is not None and self.mailbox_size < 1:
            raise InvalidProfile(f"fleet {self.name}: mailbox_size must be >= 1")
        prefix = self.vin_prefix or ""
        if prefix and not _VIN_PREFIX.fullmatch(prefix):
            raise InvalidProfile(
                f"fleet {self.name}: vin_prefix must be 3-8 of 0-9, A-Z without I, O, Q"
            )
        head = prefix + (self.profile.wmi + self.profile.vds)[len(prefix) :]
        digest = hashlib.blake2b(f"{self.seed}/{self.name}".encode(), digest_size=8).digest()
        fixed = zip(head + self.profile.plant_code, _WEIGHTS[:8] + _WEIGHTS[10:11], strict=True)
        object.__setattr__(self, "_vin_head", head)
        object.__setattr__(self, "_head_sum", sum(_TRANSLITERATION[c] * w for c, w in fixed))
        object.__setattr__(self, "_serial_base", int.from_bytes(digest, "big") % MAX_FLEET_SIZE)
        object.__setattr__(self, "_years", tuple(self.profile.years))
        name_prefix = f"{self.seed}/{self.name}/".encode()
        object.__setattr__(self, "_id_prefix", VEHICLE_NAMESPACE.bytes + name_prefix)
        failure_modes = self.failure_modes or self.profile.failure_modes
        object.__setattr__(self, "effective_failure_modes", failure_modes)
        connectivity = self.connectivity or self.profile.connectivity
        object.__setattr__(self, "effective_connectivity", connectivity)


@frozen
class VehicleIdentity:
    """What an idle vehicle costs: its id, VIN, model year and a link to its fleet."""

    vehicle_id: UUID
    vin: str
    year: int
    index: int
    fleet: FleetSpec

    @property
    def profile(self) -> VehicleProfile:
        return self.fleet.profile

    @property
    def make(self) -> str:
        return self.fleet.profile.make

    @property
    def model(self) -> str:
        return self.fleet.profile.model

    @property
    def connection_status(self) -> ConnectionStatus:
        """Drawn once per vehicle from its id (the low 32 bits, independent of the rest)."""
        lot = (self.vehicle_id.int & 0xFFFFFFFF) / 0x1_0000_0000
        return self.fleet.effective_connectivity.status_of(lot)

    @property
    def metadata(self) -> dict[str, Any]:
        """What the vehicles API shows besides make, model and year."""
        return {"fleet": self.fleet.name, "profile": self.profile.name, "index": self.index}


def build_identity(fleet: FleetSpec, index: int) -> VehicleIdentity:
    """The `index`-th vehicle of `fleet` (0-based), the same on every run.

    `vehicle_id` is `uuid5(VEHICLE_NAMESPACE, f"{seed}/{fleet name}/{index}")`; the
    check digit is summed incrementally because only the year and serial vary.
    """
    if not 0 <= index < fleet.count:
        raise ValueError(f"fleet {fleet.name} has no vehicle #{index}")
    digest = hashlib.sha1(fleet._id_prefix + str(index).encode(), usedforsecurity=False)
    # What UUID(bytes=..., version=5) computes, without its argument checks (hot at spawn).
    number = int.from_bytes(digest.digest()[:16], "big") & _UUID_CLEAR | _UUID5_SET
    vehicle_id = UUID(int=number)
    years = fleet._years
    year = years[(vehicle_id.int >> 64) % len(years)]
    year_code = _YEAR_CODES[year - 2010]
    serial = (fleet._serial_base + index) % MAX_FLEET_SIZE
    total = (
        fleet._head_sum
        + _TRANSLITERATION[year_code] * _WEIGHTS[9]
        + _SERIAL_HIGH[serial // 1000]
        + _SERIAL_LOW[serial % 1000]
    )
    check = "X" if total % 11 == 10 else str(total % 11)
    vin = f"{fleet._vin_head}{check}{year_code}{fleet.profile.plant_code}{serial:06d}"
    return VehicleIdentity(vehicle_id, vin, year, index, fleet)


def build_fleet(fleet: FleetSpec) -> list[VehicleIdentity]:
    return [build_identity(fleet, index) for index in range(fleet.count)]


def first_shared_vin(a: FleetSpec, b: FleetSpec) -> str | None:
    """A VIN both fleets would give out, or None. Only fleets with the same VIN head and
    plant can share one, and only where their serial ranges overlap."""
    if a._vin_head != b._vin_head or a.profile.plant_code != b.profile.plant_code:
        return None
    # a's vehicle i has the serial of b's vehicle (i + shift) % MAX_FLEET_SIZE.
    shift = (a._serial_base - b._serial_base) % MAX_FLEET_SIZE
    overlaps = [range(min(a.count, MAX_FLEET_SIZE - shift, b.count - shift))]
    if shift:
        wrap = MAX_FLEET_SIZE - shift
        overlaps.append(range(wrap, min(a.count, wrap + b.count)))
    for indices in overlaps:
        for index in indices:
            vin = build_identity(a, index).vin
            if vin == build_identity(b, (index + shift) % MAX_FLEET_SIZE).vin:
                return vin
    return None


@frozen
class EcuIdentity:
    """An ECU as the vehicles API lists it; the same before and after activation."""

    address: int
    name: str
    part_number: str
    serial_number: str
    software_version: str
    hardware_number: str
    supplier: str
    manufacturing_date: date

    @property
    def ecu_address(self) -> str:
        return f"0x{self.address:02X}"


def ecu_identity(vehicle: VehicleIdentity, ecu: EcuProfile) -> EcuIdentity:
    digest = hashlib.blake2b(vehicle.vehicle_id.bytes + bytes((ecu.address,)), digest_size=8)
    number = int.from_bytes(digest.digest(), "big")
    made = date(vehicle.year - 1, 3, 1) + timedelta(days=number % 240)
    serial = f"{ecu.supplier[:3].upper()}{made.year % 100:02d}{number % 10**9:09d}"
    return EcuIdentity(
        address=ecu.address,
        name=ecu.name,
        part_number=ecu.part_number,
        serial_number=serial,
        software_version=ecu.software_version,
        hardware_number=ecu.hardware_number,
        supplier=ecu.supplier,
        manufacturing_date=made,
    )


def ecu_identities(vehicle: VehicleIdentity) -> tuple[EcuIdentity, ...]:
    return tuple(ecu_identity(vehicle, ecu) for ecu in vehicle.profile.ecus)
