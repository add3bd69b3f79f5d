"""Catalog of data identifiers: what each DID means, how its value is encoded on the wire,
and who may write it.

Identification DIDs (0xF18x, 0xF19x) are the ISO 14229-1 Annex C ones; the live values use
the 0xF4xx range, which ISO 27145 maps onto the SAE J1979 (OBD) PIDs with their scaling.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from typing import Literal, Protocol

from attrs import field, frozen

from sovd.uds import Session

DidValue = str | int | float


class DataLengthError(ValueError):
    """The value does not fit the DID's data record (UDS answers NRC 0x13)."""


class DidCodec(Protocol):
    def encode(self, value: DidValue) -> bytes: ...

    def decode(self, data: bytes) -> DidValue: ...


@frozen
class AsciiCodec:
    """ASCII text; a fixed `length` pads with spaces, `None` takes the text as it is."""

    length: int | None = None

    def encode(self, value: DidValue) -> bytes:
        if not isinstance(value, str):
            raise TypeError(f"expected text, got {type(value).__name__}")
        if not value.isascii() or not value.isprintable():
            raise ValueError("only printable ASCII characters are allowed")
        if self.length is None:
            return value.encode("ascii")
        if len(value) > self.length:
            raise DataLengthError(f"at most {self.length} characters")
        return value.ljust(self.length).encode("ascii")

    def decode(self, data: bytes) -> DidValue:
        text = data.decode("ascii")
        return text.rstrip(" ") if self.length is not None else text


@frozen
class ScaledCodec:
    """Unsigned big-endian integer: physical value = raw * scale + offset."""

    size: int
    scale: float = 1.0
    offset: float = 0.0
    decimals: int = 0

    def encode(self, value: DidValue) -> bytes:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {type(value).__name__}")
        raw = round((value - self.offset) / self.scale)
        if not 0 <= raw < 256**self.size:
            raise ValueError(f"{value} is outside {self.minimum}..{self.maximum}")
        return raw.to_bytes(self.size, "big")

    def decode(self, data: bytes) -> DidValue:
        return self._physical(int.from_bytes(data, "big"))

    def _physical(self, raw: int) -> int | float:
        physical = raw * self.scale + self.offset
        return round(physical) if self.decimals == 0 else round(physical, self.decimals)

    @property
    def minimum(self) -> int | float:
        return self._physical(0)

    @property
    def maximum(self) -> int | float:
        return self._physical(256**self.size - 1)


_ISO_DATE = re.compile(r"20\d\d-\d\d-\d\d")


@frozen
class BcdDateCodec:
    """Three BCD bytes YY MM DD (years 2000-2099); the readable form is `YYYY-MM-DD`."""

    def encode(self, value: DidValue) -> bytes:
        if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
            raise ValueError("expected a date YYYY-MM-DD between 2000 and 2099")
        day = date.fromisoformat(value)
        return bytes.fromhex(f"{day.year % 100:02d}{day.month:02d}{day.day:02d}")

    def decode(self, data: bytes) -> DidValue:
        digits = data.hex()
        return f"20{digits[0:2]}-{digits[2:4]}-{digits[4:6]}"


@frozen
class SessionCodec:
    """One byte, the diagnostic session type; the readable form is its name."""

    def encode(self, value: DidValue) -> bytes:
        if not isinstance(value, str):
            raise TypeError("expected a session name")
        return bytes((Session.from_label(value),))

    def decode(self, data: bytes) -> DidValue:
        return Session(data[0]).label


@frozen
class WriteAccess:
    """Conditions for WriteDataByIdentifier: the sessions it is allowed in and the
    security level that must be unlocked (None: no security access needed)."""

    sessions: frozenset[Session] = frozenset({Session.EXTENDED, Session.PROGRAMMING})
    security_level: int | None = None


DataCategory = Literal["identData", "currentData", "storedData", "sysInfo"]


@frozen
class DidInfo:
    """One data identifier. `key` and `category` name it as a SOVD data resource
    (`vin`, `identData`); `group` gathers related live values."""

    did: int
    description: str
    codec: DidCodec
    unit: str | None = None
    write: WriteAccess | None = None
    key: str = ""
    category: DataCategory = "identData"
    group: str | None = None
    data_id: str = field(init=False, eq=False, repr=False)
    """The wire form, e.g. `0xF190`."""

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "data_id", f"0x{self.did:04X}")


ACTIVE_SESSION = 0xF186
SPARE_PART_NUMBER = 0xF187
SUPPLIER = 0xF18A
MANUFACTURING_DATE = 0xF18B
SERIAL_NUMBER = 0xF18C
VIN = 0xF190
HARDWARE_NUMBER = 0xF191
SOFTWARE_VERSION = 0xF195
SYSTEM_NAME = 0xF197
REPAIR_SHOP_CODE = 0xF198
PROGRAMMING_DATE = 0xF199

COOLANT_TEMPERATURE = 0xF405
ENGINE_SPEED = 0xF40C
VEHICLE_SPEED = 0xF40D
FUEL_LEVEL = 0xF42F
MODULE_VOLTAGE = 0xF442
AMBIENT_TEMPERATURE = 0xF446
ODOMETER = 0xF4A6

_ENTRIES = (
    DidInfo(
        ACTIVE_SESSION,
        "Active Diagnostic Session",
        SessionCodec(),
        key="active_diagnostic_session",
        category="sysInfo",
    ),
    DidInfo(
        SPARE_PART_NUMBER,
        "Vehicle Manufacturer Spare Part Number",
        AsciiCodec(),
        key="spare_part_number",
    ),
    DidInfo(SUPPLIER, "System Supplier Identifier", AsciiCodec(), key="supplier"),
    DidInfo(MANUFACTURING_DATE, "ECU Manufacturing Date", BcdDateCodec(), key="manufacturing_date"),
    DidInfo(SERIAL_NUMBER, "ECU Serial Number", AsciiCodec(), key="serial_number"),
    DidInfo(
        VIN,
        "Vehicle Identification Number",
        AsciiCodec(17),
        write=WriteAccess(security_level=0x01),
        key="vin",
    ),
    DidInfo(
        HARDWARE_NUMBER,
        "Vehicle Manufacturer ECU Hardware Number",
        AsciiCodec(),
        key="hardware_number",
    ),
    DidInfo(
        SOFTWARE_VERSION,
        "System Supplier ECU Software Version Number",
        AsciiCodec(),
        key="software_version",
    ),
    DidInfo(
        SYSTEM_NAME,
        "System Name or Engine Type",
        AsciiCodec(),
        key="system_name",
        category="sysInfo",
    ),
    DidInfo(
        REPAIR_SHOP_CODE,
        "Repair Shop Code or Tester Serial Number",
        AsciiCodec(10),
        write=WriteAccess(),
        key="repair_shop_code",
        category="storedData",
    ),
    DidInfo(
        PROGRAMMING_DATE,
        "Programming Date",
        BcdDateCodec(),
        write=WriteAccess(),
        key="programming_date",
        category="storedData",
    ),
    DidInfo(
        COOLANT_TEMPERATURE,
        "Engine Coolant Temperature",
        ScaledCodec(1, offset=-40),
        "°C",
        key="coolant_temperature",
        category="currentData",
        group="engine",
    ),
    DidInfo(
        ENGINE_SPEED,
        "Engine Speed",
        ScaledCodec(2, scale=0.25, decimals=2),
        "rpm",
        key="engine_speed",
        category="currentData",
        group="engine",
    ),
    DidInfo(
        VEHICLE_SPEED,
        "Vehicle Speed",
        ScaledCodec(1),
        "km/h",
        key="vehicle_speed",
        category="currentData",
        group="motion",
    ),
    DidInfo(
        FUEL_LEVEL,
        "Fuel Tank Level Input",
        ScaledCodec(1, scale=100 / 255, decimals=1),
        "%",
        key="fuel_level",
        category="currentData",
        group="engine",
    ),
    DidInfo(
        MODULE_VOLTAGE,
        "Control Module Voltage",
        ScaledCodec(2, scale=0.001, decimals=3),
        "V",
        key="module_voltage",
        category="currentData",
        group="electrical",
    ),
    DidInfo(
        AMBIENT_TEMPERATURE,
        "Ambient Air Temperature",
        ScaledCodec(1, offset=-40),
        "°C",
        key="ambient_temperature",
        category="currentData",
        group="environment",
    ),
    DidInfo(
        ODOMETER,
        "Odometer",
        ScaledCodec(4, scale=0.1, decimals=1),
        "km",
        key="odometer",
        category="currentData",
        group="motion",
    ),
)

DID_CATALOG: Mapping[int, DidInfo] = MappingProxyType({entry.did: entry for entry in _ENTRIES})

IDENTIFICATION_DIDS = frozenset(did for did in DID_CATALOG if did >> 8 == 0xF1)

DIDS_BY_KEY: Mapping[str, DidInfo] = MappingProxyType({entry.key: entry for entry in _ENTRIES})
