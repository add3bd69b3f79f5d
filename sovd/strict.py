"""The strict cattrs converter every wire format of sovd-sim is read with, and its problems
flattened to (key path, message): no coercion ("5" is not 5, true is not 1), unknown keys
rejected, and every error names what was given."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Callable, Mapping
from typing import (
    Annotated,
    Any,
    Literal,
    NamedTuple,
    Protocol,
    Union,
    get_args,
    get_origin,
    runtime_checkable,
)
from uuid import UUID

import attrs
from attrs import frozen
from cattrs import ClassValidationError, Converter, IterableValidationError
from cattrs.errors import (
    AttributeValidationNote,
    ForbiddenExtraKeysError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

Hook = Callable[[Any, Any], Any]

SCALARS = (str, int, float, bool)
STRUCTURE_ERRORS = (ExceptionGroup, TypeError, ValueError)
"""What structuring with a strict converter raises for bad input (anything else is a bug)."""

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _same(name: str) -> str:
    return name


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


@frozen
class Dialect:
    """How one wire format names things in its errors, and its keys.

    `names` labels the types a value is expected to have (`int: "an integer"`, also `list`,
    `dict` and any union that deserves a label of its own); `given` names the value that
    came instead (its JSON kind, or its repr); `key` maps an attribute name to its wire key;
    `quote_keys` writes a key that is not a bare TOML key quoted in a path (`a."b c"`).
    """

    names: Mapping[Any, str]
    given: Callable[[object], str]
    key: Callable[[str], str] = _same
    required: str = "is required"
    unknown_key: str = "unknown key"
    show_rejected_choice: bool = True
    quote_keys: bool = True

    def expected(self, tp: Any) -> str:
        label = self.names.get(tp)
        if label is not None:
            return label
        if _is_union(tp):
            return " or ".join(self.expected(arg) for arg in get_args(tp) if arg is not type(None))
        return getattr(tp, "__name__", str(tp))

    def mismatch(self, tp: Any, value: object) -> TypeError:
        return TypeError(f"expected {self.expected(tp)}, got {self.given(value)}")


@runtime_checkable
class Constraint(Protocol):
    """`Annotated` metadata that checks a structured value; raises ValueError if it fails."""

    def check(self, value: object) -> None: ...


@frozen
class NonEmpty:
    def check(self, value: object) -> None:
        if not value:
            raise ValueError("must not be empty")


class Problem(NamedTuple):
    """One mistake in a document: `path` is its key path (`fleets[2].count`)."""

    path: str
    message: str


def converter(dialect: Dialect, *, omit_defaults: bool = False) -> Converter:
    """A Converter that structures exactly what the types say, worded by `dialect`.

    str, int and bool take only themselves, float takes an int but not a bool, a union of
    scalars takes one of them, Literal its listed values, UUID its text, attrs classes a
    dict with known keys only (renamed by `dialect.key`), tuples and lists a list, dicts a
    dict; `Annotated[T, Constraint...]` checks after structuring T. Unstructuring writes
    tuples as lists, a dict of Any as it is and, with `omit_defaults`, leaves out attributes
    at their default.
    """
    made = Converter(forbid_extra_keys=True, detailed_validation=True)
    hooks = _Hooks(made, dialect, omit_defaults)
    for tp in (str, int, bool):
        made.register_structure_hook(tp, hooks.exact(tp))
    made.register_structure_hook(float, hooks.number)
    made.register_structure_hook(UUID, hooks.uuid)
    made.register_structure_hook_func(_is_scalar_union, hooks.scalar_union)
    made.register_structure_hook_factory(_is_literal, hooks.literal)
    made.register_structure_hook_factory(_is_constrained, hooks.constrained)
    made.register_structure_hook_factory(_is_sequence, hooks.sequence)
    made.register_structure_hook_factory(_is_mapping, hooks.mapping)
    made.register_structure_hook_factory(attrs.has, hooks.attrs_class)
    made.register_unstructure_hook_factory(attrs.has, hooks.unstructure_attrs_class)
    made.register_unstructure_hook_factory(_is_sequence, hooks.unstructure_sequence)
    made.register_unstructure_hook_func(_holds_anything, _as_it_is)
    return made


def problems(exc: BaseException, dialect: Dialect, path: str = "") -> list[Problem]:
    """What a strict converter raised, one Problem per mistake, in document order.

    Raises `exc` (or what it wraps) again when it is not about the input.
    """
    if isinstance(exc, ClassValidationError | IterableValidationError):
        found: list[Problem] = []
        with_notes, without_notes = exc.group_exceptions()
        for sub, note in with_notes:
            if isinstance(note, AttributeValidationNote):
                child = join(path, dialect.key(note.name), quote=dialect.quote_keys)
            else:
                child = join(path, note.index, quote=dialect.quote_keys)
            if isinstance(sub, KeyError):
                found.append(Problem(child, dialect.required))
            else:
                found.extend(problems(sub, dialect, child))
        for sub in without_notes:
            found.extend(problems(sub, dialect, path))
        return found
    if isinstance(exc, ForbiddenExtraKeysError):
        return [
            Problem(join(path, key, quote=dialect.quote_keys), dialect.unknown_key)
            for key in sorted(exc.extra_fields)
        ]
    if isinstance(exc, ExceptionGroup):
        return [found for sub in exc.exceptions for found in problems(sub, dialect, path)]
    if isinstance(exc, TypeError | ValueError):
        return [Problem(path, str(exc) or type(exc).__name__)]
    raise exc


def join(path: str, name: object, *, quote: bool = True) -> str:
    """`path` extended by a list index or a key (with `quote`, quoted unless bare, as in
    TOML)."""
    if isinstance(name, int):
        return f"{path}[{name}]"
    text = str(name)
    key = f'"{text}"' if quote and not _BARE_KEY.fullmatch(text) else text
    return f"{path}.{key}" if path else key


def _is_scalar_union(tp: Any) -> bool:
    if not _is_union(tp):
        return False
    members = [arg for arg in get_args(tp) if arg is not type(None)]
    return len(members) > 1 and all(arg in SCALARS for arg in members)


def _is_literal(tp: Any) -> bool:
    return get_origin(tp) is Literal


def _is_constrained(tp: Any) -> bool:
    return get_origin(tp) is Annotated


def _is_sequence(tp: Any) -> bool:
    return get_origin(tp) in (tuple, list)


def _is_mapping(tp: Any) -> bool:
    return get_origin(tp) is dict


def _holds_anything(tp: Any) -> bool:
    """A dict of Any: wire data already (a JSON document), written as it is."""
    return _is_mapping(tp) and get_args(tp)[1] is Any


def _as_it_is(value: object) -> object:
    return value


def _float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"must lie within ±{sys.float_info.max:.3g}") from None


class _Hooks:
    """The structure hooks of one converter, worded by its dialect."""

    def __init__(self, made: Converter, dialect: Dialect, omit_defaults: bool) -> None:
        self._converter = made
        self._dialect = dialect
        self._omit_defaults = omit_defaults

    def exact(self, expected: type) -> Hook:
        mismatch = self._dialect.mismatch

        def structure(value: object, _: object) -> object:
            if type(value) is not expected:
                raise mismatch(expected, value)
            return value

        return structure

    def number(self, value: object, _: object) -> float:
        if type(value) not in (int, float):
            raise self._dialect.mismatch(float, value)
        return _float(value)  # type: ignore[arg-type]

    def uuid(self, value: object, _: object) -> UUID:
        if not isinstance(value, str):
            raise TypeError(f"must be a UUID, got {self._dialect.given(value)}")
        try:
            return UUID(value)
        except ValueError:
            raise ValueError("must be a UUID") from None

    def scalar_union(self, value: object, tp: Any) -> object:
        members = get_args(tp)
        if type(value) in members:
            return value
        if float in members and type(value) is int:
            return _float(value)
        raise self._dialect.mismatch(tp, value)

    def literal(self, tp: Any) -> Hook:
        allowed = get_args(tp)
        listed = ", ".join(repr(choice) for choice in allowed)
        show = self._dialect.show_rejected_choice

        def structure(value: object, _: object) -> object:
            for choice in allowed:
                if type(choice) is type(value) and choice == value:
                    return value
            raise ValueError(f"must be one of {listed}" + (f", got {value!r}" if show else ""))

        return structure

    def constrained(self, tp: Any) -> Hook:
        base, *metadata = get_args(tp)
        checks = [item for item in metadata if isinstance(item, Constraint)]
        inner = self._converter.get_structure_hook(base)

        def structure(value: object, _: object) -> object:
            result = inner(value, base)
            for check in checks:
                check.check(result)
            return result

        return structure

    def sequence(self, tp: Any) -> Hook:
        args = get_args(tp)
        homogeneous = get_origin(tp) is list or (len(args) == 2 and args[1] is Ellipsis)
        make = tuple if get_origin(tp) is tuple else list
        label = self._dialect.expected(list)

        def structure(value: object, _: object) -> object:
            if not isinstance(value, list | tuple):
                raise self._dialect.mismatch(list, value)
            if not homogeneous and len(value) != len(args):
                raise ValueError(f"expected {label} of {len(args)} values, got {len(value)}")
            item_types = [args[0]] * len(value) if homogeneous else list(args)
            return make(self._items(tp, enumerate(value), item_types))

        return structure

    def mapping(self, tp: Any) -> Hook:
        key_type, value_type = get_args(tp)
        key_hook = self._converter.get_structure_hook(key_type)
        value_hook = self._converter.get_structure_hook(value_type)

        def structure(value: object, _: object) -> dict[Any, Any]:
            if not isinstance(value, dict):
                raise self._dialect.mismatch(dict, value)
            try:
                if value_type is Any:
                    return {key_hook(key, key_type): item for key, item in value.items()}
                return {
                    key_hook(key, key_type): value_hook(item, value_type)
                    for key, item in value.items()
                }
            except Exception:
                pass  # structured again below, to note every failure with its key
            keys = self._items(tp, ((key, key) for key in value), [key_type] * len(value))
            values = self._items(tp, value.items(), [value_type] * len(value))
            return dict(zip(keys, values, strict=True))

        return structure

    def _items(self, tp: Any, items: Any, item_types: list[Any]) -> list[Any]:
        """Each (index, item) structured as its type; every failure noted with its index."""
        done: list[Any] = []
        errors: list[Exception] = []
        for (index, item), item_type in zip(items, item_types, strict=True):
            try:
                done.append(self._converter.structure(item, item_type))
            except Exception as exc:
                exc.__notes__ = [
                    *getattr(exc, "__notes__", []),
                    IterableValidationNote(f"@ index {index!r}", index, item_type),
                ]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"while structuring {tp!r}", errors, tp)
        return done

    def _renames(self, cls: type) -> dict[str, Any]:
        key = self._dialect.key
        return {
            a.name: override(rename=key(a.name)) for a in attrs.fields(cls) if key(a.name) != a.name
        }

    def attrs_class(self, cls: type) -> Hook:
        renames = self._renames(cls)
        quick: Hook = make_dict_structure_fn(
            cls,
            self._converter,
            _cattrs_forbid_extra_keys=True,
            _cattrs_detailed_validation=False,
            **renames,
        )
        detailed: Hook = make_dict_structure_fn(
            cls, self._converter, _cattrs_forbid_extra_keys=True, **renames
        )
        mismatch = self._dialect.mismatch

        def structure(value: object, tp: object) -> object:
            if not isinstance(value, dict):
                raise mismatch(dict, value)
            try:
                return quick(value, tp)
            except Exception:
                pass  # structured again below, to note every problem with its key
            return detailed(value, tp)

        return structure

    def unstructure_attrs_class(self, cls: type) -> Callable[[Any], Any]:
        return make_dict_unstructure_fn(
            cls,
            self._converter,
            _cattrs_omit_if_default=self._omit_defaults,
            **self._renames(cls),
        )

    def unstructure_sequence(self, _: Any) -> Callable[[Any], list[Any]]:
        unstructure = self._converter.unstructure
        return lambda value: [unstructure(item) for item in value]
