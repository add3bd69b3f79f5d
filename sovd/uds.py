"""UDS (ISO 14229-1) vocabulary: service ids, negative response codes, DTC status bits,
sessions, and the byte layout of positive and negative responses."""

from __future__ import annotations

import re
from enum import IntEnum, IntFlag

POSITIVE_RESPONSE_OFFSET = 0x40
NEGATIVE_RESPONSE_SID = 0x7F


class Service(IntEnum):
    DIAGNOSTIC_SESSION_CONTROL = 0x10
    ECU_RESET = 0x11
    CLEAR_DIAGNOSTIC_INFORMATION = 0x14
    READ_DTC_INFORMATION = 0x19
    READ_DATA_BY_IDENTIFIER = 0x22
    SECURITY_ACCESS = 0x27
    WRITE_DATA_BY_IDENTIFIER = 0x2E
    ROUTINE_CONTROL = 0x31

    @property
    def label(self) -> str:
        return _SERVICE_LABELS[self]


_SERVICE_LABELS = {
    Service.DIAGNOSTIC_SESSION_CONTROL: "DiagnosticSessionControl",
    Service.ECU_RESET: "ECUReset",
    Service.CLEAR_DIAGNOSTIC_INFORMATION: "ClearDiagnosticInformation",
    Service.READ_DTC_INFORMATION: "ReadDTCInformation",
    Service.READ_DATA_BY_IDENTIFIER: "ReadDataByIdentifier",
    Service.SECURITY_ACCESS: "SecurityAccess",
    Service.WRITE_DATA_BY_IDENTIFIER: "WriteDataByIdentifier",
    Service.ROUTINE_CONTROL: "RoutineControl",
}


class Nrc(IntEnum):
    """Negative response codes, named as in ISO 14229-1 Annex A."""

    GENERAL_REJECT = 0x10
    SERVICE_NOT_SUPPORTED = 0x11
    SUB_FUNCTION_NOT_SUPPORTED = 0x12
    INCORRECT_MESSAGE_LENGTH_OR_INVALID_FORMAT = 0x13
    BUSY_REPEAT_REQUEST = 0x21
    CONDITIONS_NOT_CORRECT = 0x22
    REQUEST_SEQUENCE_ERROR = 0x24
    REQUEST_OUT_OF_RANGE = 0x31
    SECURITY_ACCESS_DENIED = 0x33
    INVALID_KEY = 0x35
    EXCEEDED_NUMBER_OF_ATTEMPTS = 0x36
    REQUIRED_TIME_DELAY_NOT_EXPIRED = 0x37
    RESPONSE_PENDING = 0x78
    SUB_FUNCTION_NOT_SUPPORTED_IN_ACTIVE_SESSION = 0x7E
    SERVICE_NOT_SUPPORTED_IN_ACTIVE_SESSION = 0x7F

    @property
    def label(self) -> str:
        """The standard's camelCase name, e.g. `requestOutOfRange`."""
        return _NRC_LABELS[self]

    def describe(self) -> str:
        return f"NRC 0x{self.value:02X} {self.label}"


_NRC_LABELS = {
    Nrc.GENERAL_REJECT: "generalReject",
    Nrc.SERVICE_NOT_SUPPORTED: "serviceNotSupported",
    Nrc.SUB_FUNCTION_NOT_SUPPORTED: "subFunctionNotSupported",
    Nrc.INCORRECT_MESSAGE_LENGTH_OR_INVALID_FORMAT: "incorrectMessageLengthOrInvalidFormat",
    Nrc.BUSY_REPEAT_REQUEST: "busyRepeatRequest",
    Nrc.CONDITIONS_NOT_CORRECT: "conditionsNotCorrect",
    Nrc.REQUEST_SEQUENCE_ERROR: "requestSequenceError",
    Nrc.REQUEST_OUT_OF_RANGE: "requestOutOfRange",
    Nrc.SECURITY_ACCESS_DENIED: "securityAccessDenied",
    Nrc.INVALID_KEY: "invalidKey",
    Nrc.EXCEEDED_NUMBER_OF_ATTEMPTS: "exceededNumberOfAttempts",
    Nrc.REQUIRED_TIME_DELAY_NOT_EXPIRED: "requiredTimeDelayNotExpired",
    Nrc.RESPONSE_PENDING: "requestCorrectlyReceivedResponsePending",
    Nrc.SUB_FUNCTION_NOT_SUPPORTED_IN_ACTIVE_SESSION: "subFunctionNotSupportedInActiveSession",
    Nrc.SERVICE_NOT_SUPPORTED_IN_ACTIVE_SESSION: "serviceNotSupportedInActiveSession",
}


class NegativeResponse(Exception):
    """Raised by a command handler: the ECU answers `7F <sid> <nrc>`."""

    def __init__(self, service: Service, nrc: Nrc) -> None:
        super().__init__(nrc.describe())
        self.service = service
        self.nrc = nrc

    @property
    def uds(self) -> bytes:
        return negative_response(self.service, self.nrc)


class DtcStatus(IntFlag):
    """The DTC status byte (ISO 14229-1 D.2), bit 0 first."""

    TEST_FAILED = 0x01
    TEST_FAILED_THIS_OPERATION_CYCLE = 0x02
    PENDING_DTC = 0x04
    CONFIRMED_DTC = 0x08
    TEST_NOT_COMPLETED_SINCE_LAST_CLEAR = 0x10
    TEST_FAILED_SINCE_LAST_CLEAR = 0x20
    TEST_NOT_COMPLETED_THIS_OPERATION_CYCLE = 0x40
    WARNING_INDICATOR_REQUESTED = 0x80


DTC_STATUS_BIT_NAMES = (
    "testFailed",
    "testFailedThisOperationCycle",
    "pendingDTC",
    "confirmedDTC",
    "testNotCompletedSinceLastClear",
    "testFailedSinceLastClear",
    "testNotCompletedThisOperationCycle",
    "warningIndicatorRequested",
)


_STATUS_BITS = tuple(
    {name: bool(status >> bit & 1) for bit, name in enumerate(DTC_STATUS_BIT_NAMES)}
    for status in range(256)
)


def dtc_status_bits(status: int) -> dict[str, bool]:
    """The eight status bits by name, as a new dict."""
    return _STATUS_BITS[status].copy()


class Session(IntEnum):
    DEFAULT = 0x01
    PROGRAMMING = 0x02
    EXTENDED = 0x03
    SAFETY_SYSTEM = 0x04

    @property
    def label(self) -> str:
        return _SESSION_LABELS[self]

    @classmethod
    def from_label(cls, label: str) -> Session:
        return _SESSIONS_BY_LABEL[label]


_SESSION_LABELS = {
    Session.DEFAULT: "default",
    Session.PROGRAMMING: "programming",
    Session.EXTENDED: "extended",
    Session.SAFETY_SYSTEM: "safetySystem",
}
_SESSIONS_BY_LABEL = {label: session for session, label in _SESSION_LABELS.items()}


class ResetType(IntEnum):
    HARD_RESET = 0x01
    KEY_OFF_ON_RESET = 0x02
    SOFT_RESET = 0x03


RESET_TYPES_BY_LABEL = {
    "hardReset": ResetType.HARD_RESET,
    "keyOffOnReset": ResetType.KEY_OFF_ON_RESET,
    "softReset": ResetType.SOFT_RESET,
}

READ_DTC_BY_STATUS_MASK = 0x02
ROUTINE_START = 0x01
ROUTINE_STOP = 0x02
ROUTINE_REQUEST_RESULTS = 0x03
ALL_DTC_GROUPS = 0xFFFFFF


def positive_response(service: Service, *parts: bytes | int) -> bytes:
    """`<sid + 0x40> <parts...>`; ints are single bytes."""
    out = bytearray((service + POSITIVE_RESPONSE_OFFSET,))
    for part in parts:
        if isinstance(part, int):
            out.append(part)
        else:
            out += part
    return bytes(out)


def negative_response(service: Service, nrc: Nrc) -> bytes:
    return bytes((NEGATIVE_RESPONSE_SID, service, nrc))


def hex_bytes(data: bytes) -> str:
    """The form every reply uses for raw bytes: upper-case hex, no separators."""
    return data.hex().upper()


_DTC_CODE = re.compile(r"[PCBU][0-3][0-9A-F]{3}")
_DTC_SYSTEMS = "PCBU"


def encode_dtc(code: str, failure_type: int = 0x00) -> int:
    """SAE J2012 code -> 3-byte UDS DTC: `P0420` -> 0x042000.

    The first two bits carry the system (P, C, B, U), the next two the first digit (0-3),
    the remaining twelve the three hex digits; the third byte is the failure type.
    Raises ValueError for a code that has no 2-byte J2012 form (second character 4-9).
    """
    if not _DTC_CODE.fullmatch(code):
        raise ValueError(f"{code!r} is not an SAE J2012 code")
    two_bytes = _DTC_SYSTEMS.index(code[0]) << 14 | int(code[1]) << 12 | int(code[2:], 16)
    return two_bytes << 8 | failure_type


def decode_dtc(uds_dtc: int) -> str:
    two_bytes = uds_dtc >> 8
    return f"{_DTC_SYSTEMS[two_bytes >> 14]}{two_bytes >> 12 & 0x3}{two_bytes & 0xFFF:03X}"
