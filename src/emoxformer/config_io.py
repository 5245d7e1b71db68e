"""Dataclasses from mappings: the one loader behind every configuration in the package.

The experiment config (config.py, from YAML and overrides), the model config (model/config.py, from a saved
`config.json`), the run config that `emoxformer evaluate` reads and the ablation grid all go through
`load_dataclass`. It depends on nothing else in the package, so the model layer can use it.

Each value is checked against its field's annotation: `int`, `float` (an int, or a string such as `3e-3`, which
YAML 1.1 reads as a string), `str`, `bool`, `None`, `Any`, `list[T]` (also the comma form `a,b,c` of an
override), `dict[K, V]`, unions, nested dataclasses and `typing.Literal` choices. Unknown keys are refused with
their dotted path. Once a dataclass is built, its `validate(where)` method, if it has one, checks the rules that
span several fields. Every problem is a ConfigError whose one-line message names the dotted key.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import ConfigError

_NO_MATCH = object()


def load_dataclass(cls, values: Any, where: str = ""):
    """An instance of dataclass `cls` from a mapping (None: the defaults), every field checked, then validated."""
    if values is None:
        values = {}
    if isinstance(values, cls):
        instance = values
    elif not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(values).__name__}")
    else:
        hints = typing.get_type_hints(cls)
        known = [f.name for f in dataclasses.fields(cls) if f.init]
        unknown = sorted(str(key) for key in values if key not in known)
        if unknown:
            raise ConfigError(f"unknown config key(s) {', '.join(dotted(where, key) for key in unknown)}; "
                              f"known: {', '.join(sorted(known))}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        instance = cls(**{name: convert(hints[name], _over_default(fields[name], value), dotted(where, name))
                          for name, value in values.items()})
    validate = getattr(instance, "validate", None)
    if callable(validate):
        validate(where)
    return instance


def _over_default(field: dataclasses.Field, value: Any) -> Any:
    """A partial mapping for a section whose default is a dataclass instance fills in from that default, not from
    the section class's own defaults (`train: {stage2: {epochs: 2}}` keeps stage 2's unfrozen backbones and rate)."""
    if not isinstance(value, dict) or field.default_factory is dataclasses.MISSING:
        return value
    default = field.default_factory()
    if not dataclasses.is_dataclass(default):
        return value
    return {**{f.name: getattr(default, f.name) for f in dataclasses.fields(default) if f.init}, **value}


def convert(hint, value: Any, where: str) -> Any:
    """`value` checked against (and, for floats and comma lists, converted to) the annotation `hint`."""
    if dataclasses.is_dataclass(hint):
        return load_dataclass(hint, value, where)
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    for option in options:
        converted = _convert_option(option, value, where)
        if converted is not _NO_MATCH:
            return converted
    allowed = [choice for option in options if typing.get_origin(option) is Literal for choice in typing.get_args(option)]
    if allowed:
        raise ConfigError(f"{where} must be {_describe_choices(allowed, type(None) in options)}, got {value!r}")
    raise ConfigError(f"{where}: {value!r} is not a valid {getattr(hint, '__name__', str(hint))}")


def _convert_option(option, value: Any, where: str) -> Any:
    base = typing.get_origin(option) or option
    if option is Any:
        return value
    if option is type(None):
        return None if value is None else _NO_MATCH
    if base is Literal:  # the type must match too: True is not 1, 1 is not "1"
        return value if any(type(value) is type(choice) and value == choice for choice in typing.get_args(option)) else _NO_MATCH
    if base is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "3e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                return _NO_MATCH
        return _NO_MATCH
    if base in (int, str, bool):
        return value if type(value) is base else _NO_MATCH
    if base is list:
        return _convert_list(option, value, where) if isinstance(value, (list, tuple, str, int, float)) else _NO_MATCH
    if base is dict:
        if not isinstance(value, dict):
            return _NO_MATCH
        key_hint, value_hint = typing.get_args(option) or (Any, Any)
        return {convert(key_hint, key, where): convert(value_hint, item, dotted(where, key)) for key, item in value.items()}
    if dataclasses.is_dataclass(option):
        return load_dataclass(option, value, where)
    return value if isinstance(value, base) else _NO_MATCH


def _convert_list(hint, value: Any, where: str) -> list:
    """A list, or its comma form `a,b,c` from an override (`21` alone: one element); each element checked against
    the list's element type."""
    element_hint = (typing.get_args(hint) or (Any,))[0]
    if isinstance(value, str):
        value = [_parse_element(text.strip(), element_hint) for text in value.split(",") if text.strip()]
    elif not isinstance(value, (list, tuple)):
        value = [value]
    return [convert(element_hint, element, f"{where}[{index}]") for index, element in enumerate(value)]


def _parse_element(text: str, element_hint) -> Any:
    """One element of a comma list as YAML would read it (`21` -> 21), except where strings are wanted (YAML 1.1
    would turn `no` into False)."""
    if element_hint is str or (typing.get_origin(element_hint) is Literal
                               and all(isinstance(choice, str) for choice in typing.get_args(element_hint))):
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def dotted(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def one_of(choices: list[str]) -> str:
    """"a", "a or b", "a, b or c"."""
    return choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"


def _describe_choices(choices: list, nullable: bool) -> str:
    """"plateau or cosine"; a run of three or more integers as "one of 1..6"; "or null" where None is allowed."""
    ints = all(type(choice) is int for choice in choices)
    if ints and len(choices) >= 3 and sorted(choices) == list(range(min(choices), max(choices) + 1)):
        return f"one of {min(choices)}..{max(choices)}" + (" or null" if nullable else "")
    return one_of([str(choice) for choice in choices] + (["null"] if nullable else []))


def field_keys(cls, where: str = "") -> list[str]:
    """Every leaf field of dataclass `cls`, as dotted keys (nested dataclasses expanded), in declaration order."""
    hints = typing.get_type_hints(cls)
    keys = []
    for f in dataclasses.fields(cls):
        key = dotted(where, f.name)
        keys += field_keys(hints[f.name], key) if dataclasses.is_dataclass(hints[f.name]) else [key]
    return keys


def read_yaml(path: str | Path) -> dict:
    """The mapping a YAML file holds ({} for an empty file); ConfigError in one line if it is not YAML or not a mapping."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable config ({exc.__class__.__name__})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections, got {type(values).__name__}")
    return values


def path_override(key: str, path) -> str:
    """The `KEY=VALUE` override that sets `key` to the text `path` verbatim: quoted, so YAML keeps it a string as
    written (unquoted, `/data/emotion #2` would lose its comment-like end, `2024` turn into a number, `no` into False
    and `a: b` into a mapping). Paths given as command-line options go through this; `--set` values are YAML."""
    return f"{key}={json.dumps(str(path))}"


def apply_override(values: dict, override: str) -> None:
    """Set `KEY=VALUE` (a dotted key, a YAML value) in the nested mapping `values`."""
    if "=" not in override:
        raise ConfigError(f"override {override!r}: expected KEY=VALUE, e.g. train.batch_size=16")
    key, raw = override.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    node = values
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {part} is not a section")
    node[parts[-1]] = value
