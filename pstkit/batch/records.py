"""Plain records <-> JSON-able dicts, so a job can cross a broker as JSON.

Only JSON goes to a broker (never pickle: whoever can write to the broker
could then run code on every worker). The codec is driven by the records'
type hints and knows exactly the shapes pstkit's option records use:
str/int/float/bool, Path, aware datetimes, enums, tuples of str, str->str
mappings, `X | None` and nested frozen dataclasses. Secret values never
cross: a SecretSpec's `value` is dropped on the way out.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import types
import typing
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pstkit.options import SecretSpec

T = TypeVar("T")


def encode(record: object) -> dict[str, Any]:
    """A dataclass instance -> dict of JSON values (secret values left out)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):  # type: ignore[arg-type]
        if isinstance(record, SecretSpec) and f.name == "value":
            continue
        out[f.name] = _encode_value(getattr(record, f.name))
    return out


def _encode_value(value: object) -> Any:
    if isinstance(value, enum.Enum):  # first: a StrEnum is also a str
        return value.value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_encode_value(v) for v in value]
    if isinstance(value, collections.abc.Mapping):
        return {str(k): _encode_value(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return encode(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def decode(cls: type[T], data: dict[str, Any]) -> T:
    """The inverse of `encode` (unknown keys are ignored: newer submitters)."""
    hints = typing.get_type_hints(cls)
    kwargs = {
        f.name: _decode_value(hints[f.name], data[f.name])
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name in data
    }
    return cls(**kwargs)


def _decode_value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _decode_value(inner[0], value)
    if origin is tuple:
        return tuple(_decode_value(typing.get_args(hint)[0], v) for v in value)
    if origin in (collections.abc.Mapping, dict):
        return dict(value)
    if hint is Path:
        return Path(value)
    if hint is datetime:
        return datetime.fromisoformat(value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return decode(hint, value)
    return value
