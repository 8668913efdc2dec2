"""Results files read back into the dataclasses that wrote them, or a clear error.

The benchmark and the notebooks write their figures as JSON (``asdict``),
with a ``schema_version``. Reading checks the version first, then rebuilds
the objects by following the dataclasses' type annotations, so a file of
another shape fails at once with the place named, never with a ``KeyError``
deep inside a plot.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, TypeVar


class SchemaError(ValueError):
    """A results file this version cannot read: another schema version, or another shape."""


T = TypeVar("T")


def check_schema_version(data: Any, version: int, source: str, remedy: str) -> None:
    """A ``SchemaError`` ending in ``remedy`` unless ``data["schema_version"] == version``."""
    found = data.get("schema_version") if isinstance(data, dict) else None
    if found != version:
        what = ("no schema version (it predates them)" if found is None
                else f"schema version {found!r}")
        raise SchemaError(f"{source} has {what}, and this version of streamlab reads schema "
                          f"version {version}: {remedy} to replace it.")


def decode(kind: type[T], data: Any, source: str = "data") -> T:
    """``data`` as parsed from JSON, rebuilt into ``kind`` (a dataclass, usually).

    Follows the type annotations: nested dataclasses, ``list[...]``,
    ``tuple[...]``, ``dict[str, ...]``, ``X | None`` and plain numbers, strings
    and bools (an int is accepted where a float is expected; a bool is never
    taken for a number). Anything that does not fit raises ``SchemaError``
    naming the source and the place, e.g.
    ``build/bench/results.json: chunks.points[2]: missing 'share'``.
    """
    try:
        return _decode(kind, data, "")
    except SchemaError as exc:
        raise SchemaError(f"{source}: {exc}") from None


def _in(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


@functools.cache
def _field_types(kind: type) -> dict[str, tuple[Any, bool]]:
    """Each init field's type, and whether it must be present."""
    hints = typing.get_type_hints(kind)
    return {f.name: (hints[f.name], f.default is dataclasses.MISSING
                     and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(kind) if f.init}


def _decode(kind: Any, data: Any, where: str) -> Any:
    if dataclasses.is_dataclass(kind):
        return _decode_dataclass(kind, data, where)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return _decode_union(args, data, where)
    if origin is list:
        _expect(isinstance(data, list), "a list", data, where)
        return [_decode(args[0], item, f"{where}[{i}]") for i, item in enumerate(data)]
    if origin is tuple:
        _expect(isinstance(data, list | tuple) and len(data) == len(args),
                f"a list of {len(args)}", data, where)
        return tuple(_decode(a, item, f"{where}[{i}]")
                     for i, (a, item) in enumerate(zip(args, data, strict=True)))
    if origin is dict:
        _expect(isinstance(data, dict), "an object", data, where)
        return {key: _decode(args[1], value, _in(where, key)) for key, value in data.items()}
    if kind is Any:
        return data
    if kind is float:
        _expect(isinstance(data, int | float) and not isinstance(data, bool), "a number",
                data, where)
        return float(data)
    if kind in (int, bool, str):
        _expect(type(data) is kind, f"{'an' if kind is int else 'a'} {kind.__name__}", data,
                where)
        return data
    raise TypeError(f"decode() does not know how to read {kind!r} (at {where or 'the top'}).")


def _decode_dataclass(kind: type, data: Any, where: str) -> Any:
    _expect(isinstance(data, dict), "an object", data, where)
    fields = _field_types(kind)
    unknown = sorted(set(data) - set(fields))
    missing = [name for name, (_, required) in fields.items() if required and name not in data]
    if unknown or missing:
        problems = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + (
            [f"unexpected {', '.join(map(repr, unknown))}"] if unknown else [])
        raise SchemaError(f"{where or 'the top'}: {'; '.join(problems)} (a {kind.__name__} has "
                          f"{', '.join(fields)}).")
    return kind(**{name: _decode(fields[name][0], value, _in(where, name))
                   for name, value in data.items()})


def _decode_union(args: tuple[Any, ...], data: Any, where: str) -> Any:
    if data is None and type(None) in args:
        return None
    if type(data) in args:  # exactly one of the choices: an int stays an int
        return data
    for choice in args:
        if choice is not type(None):
            try:
                return _decode(choice, data, where)
            except SchemaError:
                continue
    names = " or ".join(getattr(a, "__name__", str(a)) for a in args)
    raise SchemaError(f"{where or 'the top'}: expected {names}, got {data!r}.")


def _expect(ok: bool, what: str, data: Any, where: str) -> None:
    if not ok:
        shown = repr(data) if len(repr(data)) < 60 else f"a {type(data).__name__}"
        raise SchemaError(f"{where or 'the top'}: expected {what}, got {shown}.")
