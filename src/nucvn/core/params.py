"""Typed parameters: turn a stage's section of ``params.yaml`` into its dataclass, or say which key is wrong.

Each stage has one typed definition of its parameters: a dataclass whose fields carry the types
and the defaults (:mod:`nucvn.stage_params`; the training stage's is
:class:`nucvn.train.config.TrainConfig`). :func:`parse_params` checks a mapping against it and
builds the instance. Everything a user can get wrong becomes one :class:`NucvnError` that names
the full key (``train.epochs``, ``fetch.sim.files``) and what was expected, before any data is
read: a wrong type (``train.epochs=two``), a scalar where a section belongs
(``preprocess.split=0.8``), a choice outside a ``Literal`` (``threshold.criterion=best``), a bound
(``fetch.sim.files=0``, from ``field(metadata={"min": 1})``) or an unknown key, with the closest
known one suggested. Missing keys take the dataclass default.

Supported field types: ``int`` (not ``bool``, not ``2.5``), ``float`` (ints accepted), ``bool``,
``str``, ``Literal[...]``, ``list[T]``, ``dict[str, T]``, ``T | None``, unions of those,
``Any`` and nested dataclasses. Bounds in field metadata: ``min``, ``max`` (inclusive) and
``gt`` (exclusive), applied to numbers and to each element of a list of numbers.

This module reads no file; the stages read ``params.yaml`` and pass the section in.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from nucvn.core.errors import NucvnError

__all__ = ["parse_params", "parse_value", "params_dict", "ParamsError"]

T = TypeVar("T")


class ParamsError(NucvnError):
    """A parameter that does not fit its typed definition; the message names the key."""


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is list:
        return f"a list of {_describe(get_args(tp)[0]).removeprefix('an ').removeprefix('a ')}s"
    if origin is dict:
        return "a mapping"
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in get_args(tp))
    if dataclasses.is_dataclass(tp):
        return "a mapping (a section of keys)"
    return str(tp)


def _check_bounds(value: Any, meta: Mapping[str, Any], key: str) -> None:
    if isinstance(value, list):
        for i, v in enumerate(value):
            _check_bounds(v, meta, f"{key}[{i}]")
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if "min" in meta and value < meta["min"]:
        raise ParamsError(f"{key}: must be >= {meta['min']}, got {value!r}")
    if "max" in meta and value > meta["max"]:
        raise ParamsError(f"{key}: must be <= {meta['max']}, got {value!r}")
    if "gt" in meta and value <= meta["gt"]:
        raise ParamsError(f"{key}: must be > {meta['gt']}, got {value!r}")
    if "lt" in meta and value >= meta["lt"]:
        raise ParamsError(f"{key}: must be < {meta['lt']}, got {value!r}")


def _convert(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked against (and, for dataclasses, built into) type ``tp``."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _convert(value, option, key)
            except ParamsError as exc:
                errors.append(exc)
        raise ParamsError(f"{key}: expected {_describe(tp)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin is Literal:
        if value in get_args(tp) and not isinstance(value, bool):
            return value
    elif origin is list:
        if isinstance(value, (list, tuple)):
            (item,) = get_args(tp)
            return [_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, Mapping):
            _, item = get_args(tp)
            return {str(k): _convert(v, item, f"{key}.{k}") for k, v in value.items()}
    elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, Mapping):
            return parse_params(tp, value, key)
    else:
        raise TypeError(f"{key}: unsupported parameter type {tp!r}")
    raise ParamsError(f"{key}: expected {_describe(tp)}, got {value!r}")


def parse_params(cls: type[T], values: Mapping[str, Any] | None, section: str) -> T:
    """An instance of dataclass ``cls`` from ``values`` (a params section named ``section``).

    Keys missing from ``values`` take the field defaults; unknown keys, wrong types and values
    outside their bounds raise :class:`ParamsError` naming ``section.key``.
    """
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ParamsError(f"{section}: expected a mapping (a section of keys), got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    for key in values:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ParamsError(f"{section}.{key}: unknown parameter{hint}; known: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in values:
            continue
        key = f"{section}.{name}"
        value = _convert(values[name], hints[name], key)
        _check_bounds(value, f.metadata, key)
        kwargs[name] = value
    return cls(**kwargs)


def parse_value(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked against type ``tp`` (e.g. ``dict[str, list[float]]``); errors name ``key``."""
    return _convert(value, tp, key)


def params_dict(obj: Any) -> dict[str, Any]:
    """A parsed parameters dataclass as plain nested dicts and lists (for JSON records)."""
    return dataclasses.asdict(obj)
