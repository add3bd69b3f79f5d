"""Vehicle profiles: what a model looks like to a diagnostic tester.

A profile is shared by every vehicle of a fleet; a vehicle only adds its seed. The fleet
config (TOML) builds these; `DEMO_PROFILES` are the built-in ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from attrs import field, frozen

from sovd.dids import DID_CATALOG, ScaledCodec
from sovd.errors import InvalidProfile
from sovd.records import ConnectionStatus
from sovd.uds import encode_dtc

_VIN_CHARS = re.compile(r"[A-HJ-NPR-Z0-9]*")


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise InvalidProfile(f"{name} must be a probability between 0 and 1, got {value}")


@frozen
class FailureModes:
    """Per-command probabilities of misbehaviour; all off by default.

    At most one mode strikes a command: a negative response (NRC 0x22, 0x31 or 0x33 chosen
    at random), a 0x78 responsePending followed by the real answer `pending_delay_s`
    later, no answer at all (the command times out), or a dropped connection.
    """

    negative_response: float = 0.0
    response_pending: float = 0.0
    timeout: float = 0.0
    connection_drop: float = 0.0
    pending_delay_s: float = 2.0
    total: float = field(init=False, eq=False)

    def __attrs_post_init__(self) -> None:
        for name in ("negative_response", "response_pending", "timeout", "connection_drop"):
            _check_probability(name, getattr(self, name))
        total = self.negative_response + self.response_pending + self.timeout + self.connection_drop
        if total > 1.0:
            raise InvalidProfile(f"failure probabilities add up to {total}, more than 1")
        if self.pending_delay_s < 0:
            raise InvalidProfile("pending_delay_s must not be negative")
        object.__setattr__(self, "total", total)


NO_FAILURES = FailureModes()

WhenDisconnected = Literal["fail", "wait"]


@frozen
class Connectivity:
    """How reachable a model's vehicles are: the shares of the fleet that are
    `intermittent` and `disconnected` (the rest is connected), each vehicle's lot drawn
    once from its id.

    A command to an intermittent vehicle is lost with probability `intermittent_loss`.
    A command to a disconnected vehicle fails at once (`when_disconnected = "fail"`) or
    waits for the vehicle until its deadline and times out (`"wait"`).
    """

    intermittent: float = 0.0
    disconnected: float = 0.0
    intermittent_loss: float = 0.25
    when_disconnected: WhenDisconnected = "fail"

    def __attrs_post_init__(self) -> None:
        for name in ("intermittent", "disconnected", "intermittent_loss"):
            _check_probability(name, getattr(self, name))
        if self.intermittent + self.disconnected > 1.0:
            raise InvalidProfile("intermittent + disconnected add up to more than 1")
        if self.when_disconnected not in ("fail", "wait"):
            raise InvalidProfile("when_disconnected must be 'fail' or 'wait'")

    def status_of(self, lot: float) -> ConnectionStatus:
        """The status of a vehicle whose lot (uniform in 0..1) is `lot`."""
        if lot < self.disconnected:
            return "disconnected"
        if lot < self.disconnected + self.intermittent:
            return "intermittent"
        return "connected"


ALWAYS_CONNECTED = Connectivity()


@frozen
class EcuProfile:
    address: int
    name: str
    part_number: str
    software_version: str
    hardware_number: str
    supplier: str
    system_name: str
    signal_dids: tuple[int, ...] = ()
    security_levels: tuple[int, ...] = (0x01,)
    p2_server_max_ms: int = 50
    p2_star_server_max_ms: int = 5000
    # A non-default session ends this long after the ECU's last request (the S3 timer).
    session_timeout_s: float = 300.0

    def __attrs_post_init__(self) -> None:
        if self.session_timeout_s <= 0:
            raise InvalidProfile(f"{self.name}: session_timeout_s must be positive")
        if not 0 <= self.address <= 0xFF:
            raise InvalidProfile(f"ECU address {self.address} does not fit one byte")
        for level in self.security_levels:
            if not (0x01 <= level <= 0x7D and level % 2 == 1):
                raise InvalidProfile(f"security level 0x{level:02X} is not an odd 0x01..0x7D")

    @property
    def ecu_address(self) -> str:
        return f"0x{self.address:02X}"


@frozen
class DtcPoolEntry:
    """A fault this model is known for: stored at start with `probability`, with UDS
    status byte `status`; after a clear it comes back at `reappear_per_hour`."""

    ecu_address: int
    code: str
    probability: float
    status: int = 0x2F
    reappear_per_hour: float = 0.0
    uds_dtc: int = field(init=False, eq=False)

    def __attrs_post_init__(self) -> None:
        _check_probability(f"probability of {self.code}", self.probability)
        try:
            object.__setattr__(self, "uds_dtc", encode_dtc(self.code))
        except ValueError as exc:
            raise InvalidProfile(str(exc)) from None
        if not 0 < self.status <= 0xFF:
            raise InvalidProfile(f"status of {self.code} must be 0x01..0xFF")
        if self.reappear_per_hour < 0:
            raise InvalidProfile(f"reappear_per_hour of {self.code} must not be negative")


@frozen
class SignalProfile:
    """A live value (a DID in 0xF4xx): where it starts and how it drifts.

    A value with `volatility` wanders around the middle of its initial range (an
    Ornstein-Uhlenbeck walk: `volatility` per square-root second, pulled back over
    `settle_s`); `rate_per_hour` adds a steady trend (the odometer). It never leaves
    `minimum..maximum`.
    """

    did: int
    initial_min: float
    initial_max: float
    minimum: float
    maximum: float
    volatility: float = 0.0
    rate_per_hour: float = 0.0
    settle_s: float = 300.0

    @property
    def typical(self) -> float:
        return (self.initial_min + self.initial_max) / 2

    def __attrs_post_init__(self) -> None:
        info = DID_CATALOG.get(self.did)
        if info is None or not isinstance(info.codec, ScaledCodec):
            raise InvalidProfile(f"signal DID 0x{self.did:04X} is not a live value in the catalog")
        low, high = info.codec.minimum, info.codec.maximum
        if not low <= self.minimum <= self.maximum <= high:
            raise InvalidProfile(
                f"signal 0x{self.did:04X} must stay within {low}..{high} {info.unit or ''}"
            )
        if self.volatility < 0 or self.settle_s <= 0:
            raise InvalidProfile(f"signal 0x{self.did:04X}: volatility >= 0, settle_s > 0")
        if not self.minimum <= self.initial_min <= self.initial_max <= self.maximum:
            raise InvalidProfile(
                f"signal 0x{self.did:04X} needs minimum <= initial_min <= initial_max <= maximum"
            )


@frozen
class VehicleProfile:
    name: str
    make: str
    model: str
    year_min: int
    year_max: int
    wmi: str
    vds: str
    plant_code: str
    ecus: tuple[EcuProfile, ...]
    dtc_pool: tuple[DtcPoolEntry, ...] = ()
    signals: tuple[SignalProfile, ...] = ()
    failure_modes: FailureModes = NO_FAILURES
    connectivity: Connectivity = ALWAYS_CONNECTED
    _ecus_by_address: Mapping[int, EcuProfile] = field(init=False, repr=False, eq=False)
    recurring_faults: tuple[DtcPoolEntry, ...] = field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if not 2010 <= self.year_min <= self.year_max <= 2039:
            raise InvalidProfile(f"{self.name}: years must lie within 2010..2039")
        if len(self.wmi) != 3 or len(self.vds) != 5 or len(self.plant_code) != 1:
            raise InvalidProfile(f"{self.name}: wmi has 3 characters, vds 5, plant_code 1")
        if not _VIN_CHARS.fullmatch(self.wmi + self.vds + self.plant_code):
            raise InvalidProfile(f"{self.name}: VIN characters are 0-9 and A-Z without I, O, Q")
        by_address = {ecu.address: ecu for ecu in self.ecus}
        if not self.ecus or len(by_address) != len(self.ecus):
            raise InvalidProfile(f"{self.name}: needs ECUs with distinct addresses")
        signal_dids = {signal.did for signal in self.signals}
        for ecu in self.ecus:
            missing = set(ecu.signal_dids) - signal_dids
            if missing:
                listed = ", ".join(f"0x{did:04X}" for did in sorted(missing))
                raise InvalidProfile(f"{self.name}: {ecu.name} serves undefined signals {listed}")
        for entry in self.dtc_pool:
            if entry.ecu_address not in by_address:
                raise InvalidProfile(
                    f"{self.name}: DTC {entry.code} names unknown ECU 0x{entry.ecu_address:02X}"
                )
        object.__setattr__(self, "_ecus_by_address", MappingProxyType(by_address))
        recurring = tuple(entry for entry in self.dtc_pool if entry.reappear_per_hour > 0)
        object.__setattr__(self, "recurring_faults", recurring)

    def ecu(self, address: int) -> EcuProfile | None:
        return self._ecus_by_address.get(address)

    @property
    def ecu_addresses(self) -> tuple[int, ...]:
        return tuple(self._ecus_by_address)

    @property
    def years(self) -> range:
        return range(self.year_min, self.year_max + 1)
