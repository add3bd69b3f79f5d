"""The command registry: what each command is called, takes, does and promises."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar, cast

import attrs
import orjson
from attrs import field, frozen

from sovd.errors import UnknownCommand, UnknownEcu
from sovd.params import params_schema, structure_params, unstructure_params
from sovd.profiles import VehicleProfile
from sovd.state import VehicleState
from sovd.uds import Service

P = TypeVar("P")


@frozen
class Reply:
    """One reply chunk from a handler: the readable form plus the raw UDS response.

    `after_s` is simulated time between the previous chunk (or the request) and this one.
    `payload` must be a dict of its own: the executor adds `udsResponse` to it.
    """

    payload: dict[str, Any]
    uds: bytes
    after_s: float = 0.0


Handler = Callable[[VehicleState, P], Iterable[Reply]]
# Ends a running command early (UDS stopRoutine); raises NegativeResponse when it cannot.
StopHandler = Callable[[VehicleState, P], Reply]


def target_ecu(params: object) -> int | None:
    """The ECU a command addresses (every built-in command has `ecu_address`)."""
    address = getattr(params, "ecu_address", None)
    return int(address, 16) if isinstance(address, str) else None


# Parsed parameter objects remembered per command type, keyed by their JSON text (which
# tells 1, 1.0, true and "1" apart). Every params type holds scalars only, so what is
# remembered cannot be changed by whoever receives it.
PARSED_KEPT = 4096
MAX_KEY_BYTES = 512


def _json_key(raw: object) -> bytes | None:
    if not isinstance(raw, dict):
        return None
    try:
        key = orjson.dumps(raw)
    except TypeError:
        return None
    return key if len(key) <= MAX_KEY_BYTES else None


@frozen
class CommandType(Generic[P]):
    name: str
    description: str
    params_type: type[P]
    handler: Handler[P]
    service: Service
    idempotent: bool = False
    streaming: bool = False
    stop: StopHandler[P] | None = None
    # The handler changes what outlives the actor (faults, written data, session, security).
    changes_state: bool = False
    schema: dict[str, Any] = field(init=False, eq=False, repr=False)
    _parsed: dict[bytes, P] = field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        attrs.resolve_types(cast(Any, self.params_type))
        object.__setattr__(self, "schema", params_schema(self.params_type))
        object.__setattr__(self, "_parsed", {})

    def parse(self, raw: object) -> P:
        """Validates wire params; raises InvalidParams with one FieldError per problem.

        The same parameters recur (the same ECU, the same DID) and their parsed form is
        immutable, so a bounded number of them are remembered."""
        if isinstance(raw, self.params_type):
            return raw
        key = _json_key(raw)
        if key is not None:
            known = self._parsed.get(key)
            if known is not None:
                return known
        parsed = structure_params(self.params_type, raw)
        if key is not None and len(self._parsed) < PARSED_KEPT:
            self._parsed[key] = parsed
        return parsed

    def check_target(self, params: object, profile: VehicleProfile) -> None:
        """Raises UnknownEcu if the params address an ECU the vehicle does not have."""
        address = target_ecu(params)
        if address is not None and profile.ecu(address) is None:
            raise UnknownEcu(address, profile.ecu_addresses)

    def describe(self) -> dict[str, Any]:
        """The entry `GET /api/v1/command-types` lists."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": copy.deepcopy(self.schema),
            "idempotent": self.idempotent,
            "streaming": self.streaming,
            "stoppable": self.stop is not None,
        }

    @staticmethod
    def wire_params(params: object) -> dict[str, Any]:
        """Parsed params back to their camelCase JSON form (defaults filled in)."""
        return unstructure_params(params)


class CommandRegistry:
    def __init__(self, commands: Iterable[CommandType[Any]] = ()) -> None:
        self._commands: dict[str, CommandType[Any]] = {}
        for command in commands:
            self.register(command)

    def register(self, command: CommandType[Any]) -> None:
        if command.name in self._commands:
            raise ValueError(f"command {command.name} is registered twice")
        self._commands[command.name] = command

    def command(
        self,
        name: str,
        *,
        params: type[P],
        service: Service,
        description: str,
        idempotent: bool = False,
        streaming: bool = False,
        stop: StopHandler[P] | None = None,
        changes_state: bool = False,
    ) -> Callable[[Handler[P]], Handler[P]]:
        """Decorator: registers the handler under `name`."""

        def register(handler: Handler[P]) -> Handler[P]:
            self.register(
                CommandType(
                    name,
                    description,
                    params,
                    handler,
                    service,
                    idempotent,
                    streaming,
                    stop,
                    changes_state,
                )
            )
            return handler

        return register

    def get(self, name: str) -> CommandType[Any]:
        try:
            return self._commands[name]
        except KeyError:
            raise UnknownCommand(name) from None

    def parse_params(self, name: str, raw: object) -> Any:
        """Raises UnknownCommand or InvalidParams; usable before any actor is involved."""
        return self.get(name).parse(raw)

    def describe(self) -> list[dict[str, Any]]:
        return [command.describe() for command in self._commands.values()]

    def copy(self) -> CommandRegistry:
        return CommandRegistry(self._commands.values())

    def __contains__(self, name: object) -> bool:
        return name in self._commands

    def __iter__(self) -> Iterator[CommandType[Any]]:
        return iter(self._commands.values())

    def __len__(self) -> int:
        return len(self._commands)
