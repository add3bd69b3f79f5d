"""Running one command against one vehicle, as a script of steps the actor performs.

`run_command` is pure domain logic: it applies the fleet's failure modes, calls the
handler, turns a `NegativeResponse` into a final negative chunk and marks the last chunk.
The actor only waits the delays and reports each step to its sink. Handlers are cheap and
synchronous, so the script is computed at once; its chunks carry the simulated delays.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from attrs import frozen

from sovd.errors import UnknownEcu
from sovd.registry import CommandType, Reply, target_ecu
from sovd.state import VehicleState
from sovd.uds import NegativeResponse, Nrc, Service, hex_bytes

INJECTED_NRCS = (
    Nrc.CONDITIONS_NOT_CORRECT,
    Nrc.REQUEST_OUT_OF_RANGE,
    Nrc.SECURITY_ACCESS_DENIED,
)
CONNECTION_LOST = "connection to the vehicle lost"


@frozen
class Chunk:
    """A reply chunk to publish after `delay_s` simulated seconds; a final chunk with an
    `error` (a negative response) ends the command `failed`."""

    payload: dict[str, Any]
    delay_s: float
    is_final: bool
    error: str | None = None


@frozen
class NoAnswer:
    """The vehicle stays silent: the command runs into its deadline."""


@frozen
class Failure:
    """The command ends `failed` without a reply chunk."""

    message: str


Step = Chunk | NoAnswer | Failure


def run_command(
    command: CommandType[Any], params: object, vehicle: VehicleState, now: datetime
) -> list[Step]:
    """The whole exchange for one command, computed at once; the handler's own
    exceptions (other than NegativeResponse) propagate to the caller."""
    vehicle.advance_to(now)
    address = target_ecu(params)
    if address is not None and address not in vehicle.ecus:
        return [Failure(UnknownEcu(address, tuple(vehicle.ecus)).message)]

    steps: list[Step] = []
    extra_delay = 0.0
    modes = vehicle.identity.fleet.effective_failure_modes
    if modes.total > 0:
        roll = vehicle.rng.random()
        if roll < modes.connection_drop:
            return [Failure(CONNECTION_LOST)]
        roll -= modes.connection_drop
        if roll < modes.timeout:
            return [NoAnswer()]
        roll -= modes.timeout
        if roll < modes.negative_response:
            nrc = vehicle.rng.choice(INJECTED_NRCS)
            return [_negative_chunk(NegativeResponse(command.service, nrc), address, 0.0)]
        roll -= modes.negative_response
        if roll < modes.response_pending:
            pending = NegativeResponse(command.service, Nrc.RESPONSE_PENDING)
            payload = {**_negative_payload(pending, address), "responsePending": True}
            steps.append(Chunk(payload, 0.0, is_final=False))
            extra_delay = modes.pending_delay_s

    if address is not None:
        vehicle.ecus[address].touch(now)
    replies: list[Reply] = []
    negative = None
    try:
        replies.extend(command.handler(vehicle, params))
    except NegativeResponse as exc:
        negative = exc
    if not replies and negative is None:
        return [Failure(f"{command.name} produced no reply")]
    last = len(replies) - 1
    for index, reply in enumerate(replies):
        # Each reply's payload is a fresh dict the handler gave away: completing it in
        # place saves a copy on every command.
        payload = reply.payload
        payload["udsResponse"] = hex_bytes(reply.uds)
        is_final = index == last and negative is None
        steps.append(Chunk(payload, reply.after_s + extra_delay, is_final))
        extra_delay = 0.0
    if negative is not None:
        steps.append(_negative_chunk(negative, address, extra_delay))
    return steps


def stop_command(command: CommandType[Any], params: object, vehicle: VehicleState) -> Chunk | None:
    """The final chunk of a command its client stopped; None when the vehicle refuses to stop
    it (the command then runs on)."""
    if command.stop is None:
        return None
    try:
        reply = command.stop(vehicle, params)
    except NegativeResponse:
        return None
    payload = reply.payload
    payload["udsResponse"] = hex_bytes(reply.uds)
    return Chunk(payload, 0.0, is_final=True)


def _negative_payload(negative: NegativeResponse, address: int | None) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if address is not None:
        payload["ecuAddress"] = f"0x{address:02X}"
    payload["negativeResponse"] = {
        "service": f"0x{negative.service:02X}",
        "serviceName": Service(negative.service).label,
        "nrc": f"0x{negative.nrc:02X}",
        "nrcName": negative.nrc.label,
    }
    payload["udsResponse"] = hex_bytes(negative.uds)
    return payload


def _negative_chunk(negative: NegativeResponse, address: int | None, delay_s: float) -> Chunk:
    return Chunk(
        _negative_payload(negative, address), delay_s, is_final=True, error=negative.nrc.describe()
    )
