"""Cheap value conversion for the CLI's parameters, so a run does not import pydantic.

typer 0.29 converts every parameter's value through a pydantic TypeAdapter, built on
first use: importing pydantic and building the adapters of one `pstkit export` cost
~0.3 s, more than the export of a small PST. Our parameters are only str, bool, int,
float, Path, list[str] and one Enum, so `install` gives each parameter a plain
converter for the ordinary values (a string from argv, a default of the right type).
Anything else (a bad number, an odd config value) goes to typer's own converter, so
the results and the error messages stay typer's. With another typer that has no such
hook (< 0.29 converts through click's types) `install` changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no"}


class _Slow(Exception):
    """This value is not an ordinary one: typer's converter decides."""


def install() -> None:
    """Make typer give each parameter the plain converter where one fits (once)."""
    try:
        from typer._coercion import RuntimeParam  # noqa: PLC0415 - typer >= 0.29 only
        from typer.core import _TyperParameter  # noqa: PLC0415
    except ImportError:
        return
    typer_own = getattr(_TyperParameter, "get_runtime_param", None)
    if typer_own is None or getattr(typer_own, "pstkit_fast", False):
        return
    fast = _fast_class(RuntimeParam)

    def get_runtime_param(param: Any) -> Any:
        # Also the options click makes on the fly (--help), hence a class-wide hook.
        descriptor = getattr(param, "type_descriptor", None)
        if getattr(param, "_runtime_param", False) is None and descriptor is not None:
            convert = _converter(descriptor.annotation, descriptor.parameter_info)
            if convert is not None and descriptor.file_annotation is None:
                param._runtime_param = fast(parameter_info=descriptor.parameter_info,
                                            annotation=descriptor.annotation, convert=convert)  # fmt: skip
        return typer_own(param)

    get_runtime_param.pstkit_fast = True  # type: ignore[attr-defined]
    setattr(_TyperParameter, "get_runtime_param", get_runtime_param)  # noqa: B010


def _fast_class(base: type[Any]) -> type[Any]:
    @dataclass(frozen=True)
    class Fast(base):  # type: ignore[misc]
        """A RuntimeParam whose conversion is `convert`, else typer's own."""

        convert: Any = None

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                return self.convert(value, param, ctx)
            except _Slow:
                from typer._coercion import build_runtime_param  # noqa: PLC0415

                slow = build_runtime_param(param.type_descriptor)
                return slow._coerce_value(value, param=param, ctx=ctx)

    return Fast


def _converter(annotation: Any, info: Any) -> Any:
    """The plain converter for `annotation`, or None when typer's must do it."""
    if getattr(info, "parser", None) is not None or getattr(info, "click_type", None):
        return None
    if annotation is str:
        return lambda value, _param, _ctx: _text(value)
    if annotation is bool:
        return lambda value, _param, _ctx: _flag(value)
    if annotation is int or annotation is float:
        return _number(annotation, info.min, info.max, bool(info.clamp))
    if annotation == list[str]:
        return lambda value, _param, _ctx: _texts(value)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return _choice(annotation, info.case_sensitive)
    if isinstance(annotation, type) and issubclass(annotation, Path) and info.path_type is None:
        return _path(annotation, info)
    return None


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Slow
    return value


def _texts(value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _Slow
    return list(value)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Slow


def _number(kind: type[Any], low: Any, high: Any, clamp: bool) -> Any:
    pattern = _INT if kind is int else _FLOAT

    def convert(value: Any, _param: Any, _ctx: Any) -> Any:
        if isinstance(value, str) and pattern.fullmatch(value):
            number = kind(value)
        elif type(value) is kind:
            number = value
        else:
            raise _Slow
        if clamp or (low is not None and number < low) or (high is not None and number > high):
            raise _Slow  # typer clamps, or words the range error
        return number

    return convert


def _choice(kind: type[Enum], case_sensitive: bool) -> Any:
    from typer._param_types import coerce_cli_choice  # noqa: PLC0415 - private, typer >= 0.29

    def convert(value: Any, _param: Any, ctx: Any) -> Any:
        try:
            return coerce_cli_choice(value, choices=list(kind), case_sensitive=case_sensitive,
                                     ctx=ctx)  # fmt: skip
        except ValueError:
            raise _Slow from None

    return convert


def _path(kind: type[Path], info: Any) -> Any:
    from typer._param_types import coerce_cli_path  # noqa: PLC0415 - private, typer >= 0.29

    def convert(value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str) and value and "\0" not in value:
            value = kind(value)
        if not isinstance(value, kind):
            raise _Slow
        # Given a Path, typer's own check (exists, dash, ...) needs no pydantic.
        return coerce_cli_path(value, info, path_type=kind, param=param, ctx=ctx)

    return convert
