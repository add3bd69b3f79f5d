"""The command mix of a load test (`--mix ReadDTC:5,ReadDataByID:4,ClearDTC:1`) and the
parameters each command is sent with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

# Parameters a command gets on a vehicle whose first ECU is at `ecuAddress`; the DID is
# the VIN, which every ECU answers.
DEFAULT_EXTRA_PARAMS: Mapping[str, Mapping[str, Any]] = {
    "ReadDTC": {},
    "ClearDTC": {},
    "ReadDataByID": {"dataId": "0xF190"},
    "ECUReset": {},
    "DiagnosticSessionControl": {"session": "default"},
    "RoutineControl": {"routineId": "0x0203"},
}


class MixError(ValueError):
    """A mix that cannot be sent; the message says why."""


@frozen
class CommandMix:
    """Command names with integer weights, in the order given; `params`, when set, are the
    parameters of every command instead of the defaults."""

    weights: tuple[tuple[str, int], ...]
    params: Mapping[str, Any] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.weights)

    def sequence(self) -> list[str]:
        """One cycle of the mix, the names spread evenly (smooth weighted round robin):
        `A:2,B:1` gives A, B, A; every cycle sends each command exactly its weight."""
        total = sum(weight for _, weight in self.weights)
        current = dict.fromkeys(self.names, 0)
        cycle = []
        for _ in range(total):
            for name, weight in self.weights:
                current[name] += weight
            chosen = max(self.names, key=lambda name: current[name])
            current[chosen] -= total
            cycle.append(chosen)
        return cycle

    def params_for(self, name: str, ecu_address: str) -> dict[str, Any]:
        if self.params is not None:
            return dict(self.params)
        return {"ecuAddress": ecu_address, **DEFAULT_EXTRA_PARAMS[name]}


def single_command(name: str, params: Mapping[str, Any] | None) -> CommandMix:
    """`--command NAME [--params JSON]`: one command, with the given or default params."""
    if params is None and name not in DEFAULT_EXTRA_PARAMS:
        raise MixError(f"no default parameters for {name!r}; give them with --params JSON")
    return CommandMix(((name, 1),), params)


def parse_mix(text: str) -> CommandMix:
    """`NAME:WEIGHT,...` (a name alone weighs 1) of commands with default parameters."""
    weights: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise MixError(f"empty entry in {text!r}; expected NAME:WEIGHT,...")
        name, _, raw_weight = part.partition(":")
        name = name.strip()
        if name not in DEFAULT_EXTRA_PARAMS:
            raise MixError(
                f"no default parameters for {name!r}; a mix takes "
                f"{', '.join(DEFAULT_EXTRA_PARAMS)} (others: --command NAME --params JSON)"
            )
        if name in weights:
            raise MixError(f"{name} is listed twice")
        try:
            weight = int(raw_weight) if raw_weight else 1
        except ValueError:
            raise MixError(f"the weight of {name} must be an integer, got {raw_weight!r}") from None
        if weight < 1:
            raise MixError(f"the weight of {name} must be >= 1, got {weight}")
        weights[name] = weight
    return CommandMix(tuple(weights.items()))
