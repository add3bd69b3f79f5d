from __future__ import annotations

import pytest
import udsoncan

from sovd.uds import (
    NegativeResponse,
    Nrc,
    Service,
    decode_dtc,
    dtc_status_bits,
    encode_dtc,
    hex_bytes,
    negative_response,
    positive_response,
)


@pytest.mark.parametrize(
    ("code", "uds_dtc"),
    [("P0420", 0x042000), ("C1418", 0x541800), ("B1000", 0x900000), ("U0100", 0xC10000)],
)
def test_j2012_codes_map_to_three_byte_uds_dtcs(code: str, uds_dtc: int) -> None:
    assert encode_dtc(code) == uds_dtc
    assert decode_dtc(uds_dtc) == code
    assert udsoncan.Dtc(uds_dtc).id_iso() == f"{code}-00"


def test_codes_without_a_two_byte_form_are_refused() -> None:
    with pytest.raises(ValueError, match="SAE J2012"):
        encode_dtc("P4420")


def test_status_bits_are_named_as_iso_14229_names_them() -> None:
    bits = dtc_status_bits(0x2F)

    assert [name for name, on in bits.items() if on] == [
        "testFailed",
        "testFailedThisOperationCycle",
        "pendingDTC",
        "confirmedDTC",
        "testFailedSinceLastClear",
    ]
    status = udsoncan.Dtc.Status.from_byte(0x2F)
    assert status.test_failed_since_last_clear and not status.warning_indicator_requested


def test_response_layouts() -> None:
    assert positive_response(Service.READ_DATA_BY_IDENTIFIER, b"\xf1\x90", b"AB") == (
        b"\x62\xf1\x90AB"
    )
    assert positive_response(Service.ECU_RESET, 0x01) == b"\x51\x01"
    assert negative_response(Service.READ_DATA_BY_IDENTIFIER, Nrc.REQUEST_OUT_OF_RANGE) == (
        b"\x7f\x22\x31"
    )
    assert hex_bytes(b"\x7f\x22\x31") == "7F2231"


def test_negative_response_names_its_code() -> None:
    negative = NegativeResponse(Service.SECURITY_ACCESS, Nrc.INVALID_KEY)

    assert str(negative) == "NRC 0x35 invalidKey"
    assert negative.uds == b"\x7f\x27\x35"
    assert Nrc.RESPONSE_PENDING.describe() == "NRC 0x78 requestCorrectlyReceivedResponsePending"
    assert udsoncan.Response.Code.get_name(0x31) == "RequestOutOfRange"
