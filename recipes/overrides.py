"""``--set a.b=c`` overrides and JSON round-trips for recipes.

Values are parsed by the declared field type, so ``train.steps=10`` is an int and a typo in a
field name fails with the list of valid names instead of silently creating a new attribute.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from midm.errors import MidmError
from recipes.config import Recipe


class RecipeError(MidmError, ValueError):
    """A recipe that cannot run; the message names the offending field."""


def _section_type(annotation: Any) -> type | None:
    """The dataclass of a section annotation (``X`` or ``X | None``), else None."""
    if dataclasses.is_dataclass(annotation):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if dataclasses.is_dataclass(a)]
        return inner[0] if inner else None
    return None


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _parse(text: str, annotation: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null", ""):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _parse(text, inner[0], key)
    if origin is list:
        if text.startswith("["):
            items = json.loads(text)
        else:
            items = [t for t in text.replace(",", " ").split() if t]
        return [_parse(str(i), args[0], key) for i in items]
    try:
        if annotation is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if annotation is int:
            return int(float(text)) if "e" in text.lower() and float(text).is_integer() else int(text)
        if annotation is float:
            return float(text)
    except ValueError:
        raise RecipeError(f"--set {key}={text}: expected {annotation.__name__}") from None
    return text


def apply_override(recipe: Recipe, assignment: str) -> None:
    """Apply one ``a.b=c`` assignment in place."""
    if "=" not in assignment:
        raise RecipeError(f"--set {assignment!r}: expected KEY=VALUE, e.g. train.steps=100")
    key, value = assignment.split("=", 1)
    parts = key.strip().split(".")
    target: Any = recipe
    for depth, part in enumerate(parts):
        if not dataclasses.is_dataclass(target):
            raise RecipeError(f"--set {key}: {'.'.join(parts[:depth])} is not a section")
        types_ = _field_types(type(target))
        if part not in types_:
            valid = ", ".join(sorted(types_))
            raise RecipeError(f"--set {key}: unknown field {part!r}; valid here: {valid}")
        if depth == len(parts) - 1:
            setattr(target, part, _parse(value.strip(), types_[part], key))
        else:
            section = getattr(target, part)
            if section is None and _section_type(types_[part]) is not None:
                raise RecipeError(f"--set {key}: recipe {recipe.name!r} has no {part!r} section (it belongs to "
                                  f"post-training recipes, e.g. *_{part})")
            target = section


def apply_overrides(recipe: Recipe, assignments: list[str] | None) -> Recipe:
    for assignment in assignments or []:
        apply_override(recipe, assignment)
    return recipe


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    return dataclasses.asdict(recipe)


def recipe_from_dict(data: dict[str, Any]) -> Recipe:
    """Inverse of :func:`recipe_to_dict` (unknown keys are an error: they signal a version skew)."""
    kwargs: dict[str, Any] = {}
    for name, annotation in _field_types(Recipe).items():
        if name not in data:
            continue
        value = data[name]
        section = _section_type(annotation)
        if section is not None and value is not None:
            allowed = set(_field_types(section))
            unknown = set(value) - allowed
            if unknown:
                raise RecipeError(f"recipe section {name!r} has unknown fields {sorted(unknown)}")
            value = section(**value)
        kwargs[name] = value
    return Recipe(**kwargs)
