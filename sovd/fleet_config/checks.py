"""Checks of the values of a fleet config: each turns a part of the wire model into its
domain value, or reports what is wrong with it (with its key path) and gives None."""

from __future__ import annotations

import re

from sovd.dids import DID_CATALOG, IDENTIFICATION_DIDS, ScaledCodec
from sovd.fleet import LatencyRange
from sovd.fleet_config.report import Report
from sovd.fleet_config.wire import ConnectivityDoc, FailureModesDoc, Hex, LatencyDoc, unstructure
from sovd.profiles import Connectivity, FailureModes

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
VIN_TEXT = re.compile(r"[A-HJ-NPR-Z0-9]*")
VIN_CHARACTERS = "VIN characters (0-9, A-Z without I, O, Q)"
LIVE_DIDS = tuple(
    sorted(did for did, info in DID_CATALOG.items() if isinstance(info.codec, ScaledCodec))
)

# The keys of the latency table that only one distribution reads: its center and spread.
_DISTRIBUTION_KEYS = {"normal": ("mean_ms", "stddev_ms"), "lognormal": ("median_ms", "sigma")}


def hex_number(raw: Hex, digits: int, path: str, report: Report, what: str) -> int | None:
    limit = 16**digits
    example = "0x10" if digits == 2 else "0xF40D"
    if isinstance(raw, int):
        if 0 <= raw < limit:
            return raw
        report.add(path, f"{what} must be 0x{0:0{digits}X}..0x{limit - 1:X}, got {raw}")
        return None
    if re.fullmatch(rf"0x[0-9A-Fa-f]{{{digits}}}", raw):
        return int(raw, 16)
    report.add(path, f'malformed {what}: expected hex like "{example}", got {raw!r}')
    return None


def probability(value: float, path: str, report: Report) -> bool:
    if 0.0 <= value <= 1.0:
        return True
    report.add(path, f"must be a probability between 0 and 1, got {value:g}")
    return False


def vin_text(value: str, length: int) -> bool:
    return len(value) == length and VIN_TEXT.fullmatch(value) is not None


def latency(doc: LatencyDoc, path: str, report: Report) -> LatencyRange | None:
    checkpoint = report.checkpoint()
    if doc.min_ms < 0:
        report.add(f"{path}.min_ms", f"must be >= 0, got {doc.min_ms:g}")
    if doc.max_ms < doc.min_ms:
        report.add(f"{path}.max_ms", f"must be >= min_ms ({doc.min_ms:g}), got {doc.max_ms:g}")
    for distribution, keys in _DISTRIBUTION_KEYS.items():
        if doc.distribution != distribution:
            for key in keys:
                if getattr(doc, key) is not None:
                    report.add(f"{path}.{key}", f"only applies to distribution = {distribution!r}")
    if report.found_since(checkpoint):
        return None
    if doc.distribution == "uniform":
        return report.build(path, lambda: LatencyRange(doc.min_ms / 1000, doc.max_ms / 1000))
    return _shaped_latency(doc, path, report)


def _shaped_latency(doc: LatencyDoc, path: str, report: Report) -> LatencyRange | None:
    """A normal or lognormal latency, its center and spread given or derived from the bounds."""
    center_key, spread_key = _DISTRIBUTION_KEYS[doc.distribution]
    if doc.distribution == "normal":
        center = doc.mean_ms if doc.mean_ms is not None else (doc.min_ms + doc.max_ms) / 2
        spread = doc.stddev_ms if doc.stddev_ms is not None else (doc.max_ms - doc.min_ms) / 6
    else:
        derived = max(doc.min_ms, min(doc.max_ms, (doc.min_ms + doc.max_ms) / 4))
        center = doc.median_ms if doc.median_ms is not None else derived
        spread = doc.sigma if doc.sigma is not None else 0.5
    checkpoint = report.checkpoint()
    if not doc.min_ms <= center <= doc.max_ms:
        report.add(
            f"{path}.{center_key}",
            f"must lie within min_ms..max_ms ({doc.min_ms:g}..{doc.max_ms:g}), got {center:g}",
        )
    if doc.distribution == "lognormal" and center <= 0:
        report.add(f"{path}.{center_key}", "must be > 0")
    if spread <= 0 and doc.max_ms > doc.min_ms:
        report.add(f"{path}.{spread_key}", f"must be > 0, got {spread:g}")
    if report.found_since(checkpoint):
        return None
    if doc.max_ms == doc.min_ms:
        return report.build(path, lambda: LatencyRange(doc.min_ms / 1000, doc.max_ms / 1000))
    return report.build(
        path,
        lambda: LatencyRange(
            doc.min_ms / 1000,
            doc.max_ms / 1000,
            doc.distribution,
            center / 1000,
            spread / 1000 if doc.distribution == "normal" else spread,
        ),
    )


def failure_modes(doc: FailureModesDoc, path: str, report: Report) -> FailureModes | None:
    rates = ("negative_response", "response_pending", "timeout", "connection_drop")
    ok = all([probability(getattr(doc, name), f"{path}.{name}", report) for name in rates])
    if doc.pending_delay_s < 0:
        report.add(f"{path}.pending_delay_s", f"must be >= 0, got {doc.pending_delay_s:g}")
        ok = False
    total = sum(getattr(doc, name) for name in rates)
    if ok and total > 1.0:
        report.add(path, f"the probabilities add up to {total:g}, more than 1")
        ok = False
    if not ok:
        return None
    return report.build(path, lambda: FailureModes(**unstructure(doc)))


def connectivity(doc: ConnectivityDoc, path: str, report: Report) -> Connectivity | None:
    shares = ("intermittent", "disconnected", "intermittent_loss")
    ok = all([probability(getattr(doc, name), f"{path}.{name}", report) for name in shares])
    if ok and doc.intermittent + doc.disconnected > 1.0:
        report.add(path, "intermittent + disconnected add up to more than 1")
        ok = False
    if not ok:
        return None
    return Connectivity(
        doc.intermittent, doc.disconnected, doc.intermittent_loss, doc.when_disconnected
    )


def command_deadline(value: float | None, path: str, report: Report) -> float | None:
    if value is not None and not value > 0:
        report.add(path, f"must be > 0, got {value:g}")
        return None
    return value


def mailbox_size(value: int | None, path: str, report: Report) -> int | None:
    if value is not None and value < 1:
        report.add(path, f"must be >= 1, got {value}")
        return None
    return value


def live_did(raw: Hex, path: str, report: Report) -> int | None:
    did = hex_number(raw, 4, path, report, "DID")
    if did is None:
        return None
    info = DID_CATALOG.get(did)
    if info is not None and isinstance(info.codec, ScaledCodec):
        return did
    known = ", ".join(f"0x{d:04X} ({DID_CATALOG[d].description})" for d in LIVE_DIDS)
    if did in IDENTIFICATION_DIDS:
        report.add(
            path,
            f"0x{did:04X} is an identification DID every ECU serves (set part_number, "
            f"software_version, ... on the ECU); live values are {known}",
        )
    else:
        report.add(path, f"0x{did:04X} is not a live value in the DID catalog; known: {known}")
    return None
