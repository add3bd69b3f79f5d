from __future__ import annotations

import pytest

from sovd.dids import (
    DID_CATALOG,
    AsciiCodec,
    BcdDateCodec,
    DataLengthError,
    ScaledCodec,
    SessionCodec,
)


def test_standard_identifiers_are_catalogued() -> None:
    assert DID_CATALOG[0xF190].description == "Vehicle Identification Number"
    assert DID_CATALOG[0xF186].description == "Active Diagnostic Session"
    assert DID_CATALOG[0xF18C].description == "ECU Serial Number"
    assert DID_CATALOG[0xF4A6].unit == "km"


def test_ascii_fixed_length_pads_and_strips() -> None:
    codec = AsciiCodec(5)

    assert codec.encode("AB") == b"AB   "
    assert codec.decode(b"AB   ") == "AB"
    with pytest.raises(DataLengthError):
        codec.encode("ABCDEF")
    with pytest.raises(ValueError, match="ASCII"):
        codec.encode("Grüße")
    with pytest.raises(TypeError):
        codec.encode(5)


def test_scaled_values_round_to_their_resolution() -> None:
    rpm = ScaledCodec(2, scale=0.25, decimals=2)

    assert rpm.encode(812.6) == (3250).to_bytes(2, "big")
    assert rpm.decode(rpm.encode(812.6)) == 812.5
    assert (rpm.minimum, rpm.maximum) == (0, 16383.75)
    with pytest.raises(ValueError, match="outside"):
        rpm.encode(20000)
    with pytest.raises(TypeError):
        rpm.encode(True)


def test_offset_values() -> None:
    coolant = ScaledCodec(1, offset=-40)

    assert coolant.encode(-40) == b"\x00"
    assert coolant.decode(b"\x82") == 90


def test_bcd_dates() -> None:
    codec = BcdDateCodec()

    assert codec.encode("2024-02-29") == b"\x24\x02\x29"
    assert codec.decode(b"\x24\x02\x29") == "2024-02-29"
    for bad in ("2024-02-30", "1999-01-01", "24-02-29", 20240229):
        with pytest.raises(ValueError, match=r"date|day"):
            codec.encode(bad)


def test_session_names() -> None:
    codec = SessionCodec()

    assert codec.encode("extended") == b"\x03"
    assert codec.decode(b"\x02") == "programming"
