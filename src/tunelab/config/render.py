"""Writing a config back out as YAML, each default with its reason as a comment."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from tunelab.config.schema import RunConfig


def dump_yaml(config: RunConfig, with_comments: bool = True) -> str:
    """The resolved config as YAML; each default carries its reason as a comment."""
    data = config.to_dict()
    if not with_comments:
        return yaml.safe_dump(data, sort_keys=False)
    lines: list[str] = []
    _emit(lines, RunConfig, data, indent=0)
    return "\n".join(lines) + "\n"


def _emit(lines: list[str], model: type[BaseModel], data: dict[str, Any], indent: int) -> None:
    pad = " " * indent
    for name, field in model.model_fields.items():
        value = data[name]
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            lines.append(f"{pad}{name}:")
            _emit(lines, annotation, value, indent + 2)
            continue
        rendered = yaml.safe_dump({name: value}, default_flow_style=True, width=10_000).strip()
        rendered = rendered[1:-1] if rendered.startswith("{") else rendered
        comment = f"  # {field.description}" if field.description else ""
        lines.append(f"{pad}{rendered}{comment}")
