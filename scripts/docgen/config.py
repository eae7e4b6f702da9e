"""Configuration tables: the predictors' flags (theirs and KServe's) and the gateway's environment."""

from __future__ import annotations

import argparse
import importlib
import os
from typing import Any

from .common import DocsError, code, table

KINDS = ("image", "text")
PREDICTOR_ENV_PREFIX = "CLIP_"
ENV_PREFIXES = (PREDICTOR_ENV_PREFIX, "GATEWAY_", "IMAGE_", "TEXT_", "PREDICTOR_")
PROBE = "__gen_docs_probe__"


def predictor_parsers() -> dict[str, dict[str, Any]]:
    """Each predictor's flag defaults by dest, from the public `predictors.settings.build_parser(kind)`.

    Read right after each build: the parsers share KServe's parent actions, whose defaults the last
    build sets."""
    settings = importlib.import_module("predictors.settings")
    build = getattr(settings, "build_parser", None)
    if not callable(build):
        raise DocsError(
            "predictors.settings.build_parser(kind) -> argparse.ArgumentParser is gone: point "
            "scripts/docgen/config.py at the function that now builds the predictors' parser"
        )
    defaults = {}
    for kind in KINDS:
        parser = build(kind)
        if not isinstance(parser, argparse.ArgumentParser):
            raise DocsError("predictors.settings.build_parser(kind) no longer returns an ArgumentParser")
        defaults[kind] = {a.dest: a.default for a in actions(parser)}
    return defaults


def image_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = importlib.import_module("predictors.settings").build_parser("image")
    return parser


def kserve_parser() -> argparse.ArgumentParser:
    from kserve import model_server

    return model_server.parser


def actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    # argparse's `_actions` (checked against Python 3.11's argparse) is the only list of a parser's flags.
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


def env_var(dest: str) -> str | None:
    """The variable a predictor flag falls back to, found by setting `CLIP_<DEST>` and rebuilding."""
    name = PREDICTOR_ENV_PREFIX + dest.upper()
    os.environ[name] = PROBE
    try:
        return name if predictor_parsers()["image"].get(dest) == PROBE else None
    finally:
        del os.environ[name]


def shown(value: Any) -> str:
    return "—" if value is None or value == "" else code(value)


def default(defaults: dict[str, dict[str, Any]], dest: str) -> str:
    """The flag's default as each predictor sets it ("image: a; text: b" where they differ)."""
    values = {kind: d[dest] for kind, d in defaults.items()}
    if len(set(map(str, values.values()))) == 1:
        return shown(values["image"])
    return "; ".join(f"{kind}: {shown(v)}" for kind, v in values.items())


def meaning(action: argparse.Action) -> str:
    text = (action.help or "").replace("%(default)s", str(action.default)).replace("%%", "%")
    if action.choices:
        text = f"one of {', '.join(code(c) for c in action.choices)}" + (f": {text}" if text else "")
    return text or "—"


def predictor_flags() -> str:
    """The flags the project adds to KServe's, with the variable each falls back to."""
    parsers = predictor_parsers()
    parent = {o for a in actions(kserve_parser()) for o in a.option_strings}
    own = [a for a in actions(image_parser()) if not parent & set(a.option_strings)]
    rows = [(code(a.option_strings[0]), env_var(a.dest), default(parsers, a.dest), meaning(a)) for a in own]
    if not any(env for _, env, _, _ in rows):
        raise DocsError(
            f"no predictor flag falls back to a {PREDICTOR_ENV_PREFIX}<FLAG> variable any more: teach "
            "scripts/docgen/config.py how predictors.settings reads the environment now"
        )
    return table(("flag", "env", "default", "meaning"), [(f, shown(e), d, m) for f, e, d, m in rows])


def kserve_flags() -> str:
    """KServe's own server flags, with the defaults the predictors give them."""
    parsers = predictor_parsers()
    rows = [
        (code(a.option_strings[0]), default(parsers, a.dest), meaning(a)) for a in actions(kserve_parser())
    ]
    return table(("flag", "default", "meaning (KServe's help)"), rows)


def gateway_settings_class() -> Any:
    """The pydantic-settings class of `gateway.settings` (the one `BaseSettings` subclass there)."""
    from pydantic_settings import BaseSettings

    module = importlib.import_module("gateway.settings")
    found = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, BaseSettings) and v is not BaseSettings
    ]
    if len(found) != 1:
        raise DocsError(f"gateway.settings should define one BaseSettings subclass, found {len(found)}")
    return found[0]


def bounds(metadata: list[Any]) -> str:
    signs = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
    return ", ".join(
        f"{sign} {getattr(m, attr)}" for m in metadata for attr, sign in signs.items() if hasattr(m, attr)
    )


def type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    if "tuple[str" in str(annotation):
        return "comma-separated list"
    return {"str": "string", "float": "number", "int": "integer", "bool": "true/false"}.get(text, text)


def gateway_env() -> str:
    """Every gateway setting: its variable, type, default, bounds and description."""
    cls = gateway_settings_class()
    prefix = str(cls.model_config.get("env_prefix", ""))
    rows = []
    for name, field in cls.model_fields.items():
        if not field.description:
            raise DocsError(f"gateway setting {name} has no description: give it Field(description=...)")
        value = field.get_default(call_default_factory=True)
        if isinstance(value, bool):
            value = str(value).lower()
        shown_default = "empty" if value in ((), [], "") else shown(value)
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        env = (alias or prefix + name).upper()
        rows.append(
            (
                code(env),
                type_name(field.annotation),
                shown_default,
                bounds(field.metadata) or "—",
                field.description,
            )
        )
    return table(("variable", "type", "default", "bounds", "meaning"), rows)
