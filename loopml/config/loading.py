"""Loading ``params.yaml``: overrides, validation, and error messages that name the key path."""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from loopml.config.params import Params
from loopml.exceptions import ConfigError
from loopml.secrets import redact


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated by ``override``, recursively; neither input is modified."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_dotted(assignments: list[str]) -> dict[str, Any]:
    """Turn ``["train.max_epochs=5", "data.source.kind=file"]`` into a nested dict.

    Values are parsed as YAML, so ``5`` is an int, ``true`` a bool and ``[a, b]`` a list.
    """
    out: dict[str, Any] = {}
    for item in assignments:
        if "=" not in item:
            raise ConfigError([f"override '{item}' is not of the form key.path=value"], "overrides")
        key, raw = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError([f"override '{item}' has an empty key"], "overrides")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def _known_keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that owns the field at ``loc`` (for 'did you mean')."""
    model: type[BaseModel] | None = Params
    for part in loc[:-1]:
        if model is None or not isinstance(part, str):
            return None
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return None
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    return model


_KEYED = re.compile(r"^([A-Za-z_][\w.\[\]-]*): (.*)$", re.S)


def _validator_problems(path: str, message: str) -> list[str]:
    """A model validator's ``"key.sub: what; other: what"``, keyed under ``path``."""
    message = message.removeprefix("Value error, ")
    out = []
    for part in message.split("; "):
        keyed = _KEYED.match(part)
        if keyed:
            key = f"{path}.{keyed.group(1)}" if path else keyed.group(1)
            out.append(f"{key}: {keyed.group(2)}")
        else:
            out.append(f"{path or '<root>'}: {part}")
    return out


def _format_errors(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        path = ".".join(str(p) for p in loc)
        if e["type"] == "extra_forbidden":
            msg = f"{path}: unknown key"
            owner = _model_at(loc)
            if owner is not None:
                close = difflib.get_close_matches(str(loc[-1]), _known_keys(owner), n=1)
                if close:
                    msg += f" (did you mean '{close[0]}'?)"
        elif e["type"] == "missing":
            msg = f"{path}: required key is missing"
        elif e["type"] == "value_error" and isinstance(e.get("input"), dict):
            problems.extend(_validator_problems(path, e["msg"]))
            continue
        else:
            got = e.get("input")
            shown = redact(repr(got)) if not isinstance(got, dict | list) else type(got).__name__
            msg = f"{path or '<root>'}: {e['msg'].removeprefix('Value error, ')} (got {shown})"
        problems.append(msg)
    return problems


def params_from_dict(
    raw: Mapping[str, Any], *, root: Path = Path("."), source: str = "params.yaml"
) -> Params:
    if not isinstance(raw, Mapping):
        raise ConfigError([f"top level must be a mapping, got {type(raw).__name__}"], source)
    try:
        return Params.model_validate({**raw, "root": root, "source": Path(source)})
    except ValidationError as err:
        raise ConfigError(_format_errors(err), source) from None


def load_params(
    path: str | Path = "params.yaml",
    overrides: Mapping[str, Any] | None = None,
) -> Params:
    """Load ``params.yaml``, apply nested ``overrides`` (a Prefect flow parameter), validate."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError([f"file not found: {path}"], str(path))
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], str(path)) from None
    if overrides:
        raw = deep_merge(raw, overrides)
    return params_from_dict(raw, root=path.parent, source=str(path))
