"""Nested frozen dataclass configs addressed by dotted keys (`optim.base_lr`): overrides
from the command line (strings) and from TOML files, written back as TOML by hand (the
stdlib reads TOML but does not write it), and compared key by key for resume checks.

`None` has no TOML spelling: it is written and read as the string "none" for fields
whose type allows None."""
from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A key or value that does not fit the config; the message says which and why."""


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_dc(obj_or_type) -> bool:
    return dataclasses.is_dataclass(obj_or_type)


def flatten(cfg, prefix: str = "") -> dict[str, Any]:
    """All leaf values of a nested dataclass as {"section.field": value}, in field order."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        key = f"{prefix}{f.name}"
        if _is_dc(value):
            out.update(flatten(value, key + "."))
        else:
            out[key] = value
    return out


def _strip_optional(tp):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else tp), True
    return tp, False


def coerce(value: Any, tp, key: str) -> Any:
    """Convert `value` (a CLI string or a TOML value) to the annotated type `tp`."""
    tp, optional = _strip_optional(tp)
    if optional and (value is None or (isinstance(value, str) and value.lower() == "none")):
        return None
    origin = typing.get_origin(tp)
    try:
        if origin is typing.Literal:
            choices = typing.get_args(tp)
            if value not in choices:
                raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, choices))}")
            return value
        if origin in (tuple, list):
            args = typing.get_args(tp)
            if isinstance(value, str):
                text = value.strip().strip("()[]")
                items = [s.strip() for s in text.split(",") if s.strip()]
            else:
                items = list(value)
            if origin is tuple and args and args[-1] is not Ellipsis:
                if len(items) != len(args):
                    raise ConfigError(f"{key}: expected {len(args)} values, got {len(items)} ({value!r})")
                return tuple(coerce(v, a, key) for v, a in zip(items, args))
            inner = args[0] if args else str
            seq = [coerce(v, inner, key) for v in items]
            return tuple(seq) if origin is tuple else seq
        if tp is bool:
            if isinstance(value, bool):
                return value
            text = str(value).lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{key}: {value!r} is not a boolean (true/false)")
        if tp is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ConfigError(f"{key}: {value!r} is not an integer")
            return int(float(value)) if isinstance(value, str) and ("e" in value.lower()) else int(value)
        if tp is float:
            if isinstance(value, bool):
                raise ConfigError(f"{key}: {value!r} is not a number")
            return float(value)
        if tp is str:
            if not isinstance(value, str):
                raise ConfigError(f"{key}: {value!r} is not a string")
            return value
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{key}: cannot read {value!r} as {getattr(tp, '__name__', tp)}") from None
    return value


def _known_keys(cls, prefix="") -> list[str]:
    keys = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if _is_dc(hints[f.name]):
            keys += _known_keys(hints[f.name], f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _close(key: str, known: list[str]) -> str:
    import difflib
    near = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    if not near:
        tail = key.rsplit(".", 1)[-1]
        near = [k for k in known if k.rsplit(".", 1)[-1] == tail][:3]
    return f" (did you mean {', '.join(near)}?)" if near else ""


def apply(cfg, overrides: dict[str, Any], _prefix: str = ""):
    """A copy of `cfg` with dotted keys replaced; values are coerced to each field's type.
    Unknown keys raise ConfigError naming the closest known keys."""
    known = [_prefix + k for k in _known_keys(type(cfg))]
    hints = _hints(type(cfg))
    names = {f.name for f in dataclasses.fields(cfg)}
    nested: dict[str, dict[str, Any]] = {}
    direct: dict[str, Any] = {}
    for key, value in overrides.items():
        full = _prefix + key
        head, _, rest = key.partition(".")
        if head not in names or (rest and not _is_dc(hints[head])):
            raise ConfigError(f"unknown config key {full!r}{_close(full, known)}")
        if _is_dc(hints[head]):
            if not rest:
                raise ConfigError(f"{full!r} is a section; set one of its fields ({full}.FIELD=VALUE)")
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = coerce(value, hints[head], full)
    for head, sub in nested.items():
        direct[head] = apply(getattr(cfg, head), sub, f"{_prefix}{head}.")
    try:
        return dataclasses.replace(cfg, **direct)
    except (TypeError, ValueError) as exc:  # a __post_init__ check of the section
        raise ConfigError(f"invalid value in [{_prefix.rstrip('.') or 'config'}]: {exc}") from None


def parse_value(text: str) -> Any:
    """A command-line value read as a TOML value when it is one (numbers, booleans,
    [lists]), else kept as the raw string (tube, none, (1, 1, 1))."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_set(items: list[str]) -> dict[str, Any]:
    """["optim.base_lr=1e-3", ...] -> {"optim.base_lr": 0.001}."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set optim.base_lr=1e-3")
        out[key.strip()] = parse_value(value.strip())
    return out


def flatten_toml(table: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out.update(flatten_toml(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def load_toml(path: Path) -> dict[str, Any]:
    """A TOML file as dotted overrides; a syntax error names the file and the line."""
    path = Path(path)
    try:
        return flatten_toml(tomllib.loads(path.read_text()))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None


def _toml_value(v: Any) -> str:
    if v is None:
        return '"none"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if math.isnan(v):
            return "nan"
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ConfigError(f"cannot write {v!r} ({type(v).__name__}) to TOML")


def to_toml(cfg, header: str = "", comments: dict[str, str] | None = None,
            sections: dict[str, str] | None = None) -> str:
    """The whole config as TOML: one table per (nested) section, leaves first.
    comments: {"section.key": text} written as `# text` above each key (wrapped at 88
    columns); sections: {"section": text} above each table header."""
    import textwrap
    lines = [f"# {line}" for line in header.splitlines()] if header else []

    def note(text: str | None, indent: str = "") -> None:
        if text:
            lines.extend(textwrap.wrap(text, 88, initial_indent=indent + "# ",
                                       subsequent_indent=indent + "# "))

    def emit(obj, table: str):
        leaves = [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)
                  if not _is_dc(getattr(obj, f.name))]
        subs = [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if _is_dc(getattr(obj, f.name))]
        if table and leaves:
            lines.append("")
            note((sections or {}).get(table))
            lines.append(f"[{table}]")
        for name, value in leaves:
            note((comments or {}).get(f"{table}.{name}" if table else name))
            lines.append(f"{name} = {_toml_value(value)}")
        for name, value in subs:
            emit(value, f"{table}.{name}" if table else name)

    emit(cfg, "")
    return "\n".join(lines).lstrip("\n") + "\n"


def diff(a, b) -> list[tuple[str, Any, Any]]:
    """Keys whose values differ between two configs of the same class: (key, a, b)."""
    fa, fb = flatten(a), flatten(b)
    return [(k, fa.get(k), fb.get(k)) for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k)]
