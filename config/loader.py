"""Read config/<stage>.yaml into a validated StageConfig, or fail with a message a human can act on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from config.stage import StageConfig

CONFIG_DIR = Path(__file__).resolve().parent
STAGE_ORDER = ("dev", "staging", "prod")


class ConfigError(ValueError):
    """A stage file that cannot be used; the message names file, field, value and what is allowed."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _field_path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def describe_validation_error(error: ValidationError, source: str, *, kind: str = "stage") -> str:
    """One line per problem: file, field path, message with the allowed values, and the value given."""
    lines = [f"{source}: invalid {kind} configuration ({error.error_count()} problem(s))"]
    for problem in error.errors():
        field = _field_path(tuple(problem["loc"]))
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see config/README.md for allowed keys)"
        value = problem.get("input")
        shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
        lines.append(f"  {source}: {field}: {message}{shown}")
    return "\n".join(lines)


def parse_stage(data: object, *, name: str, source: str) -> StageConfig:
    """Validate already-parsed YAML; `source` is what error messages call the file."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings at the top level")
    if "name" in data:
        raise ConfigError(f"{source}: name: the stage name comes from the file name; remove it")
    try:
        return StageConfig.model_validate({**data, "name": name})
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, source)) from None


def read_yaml(path: Path) -> tuple[object, str]:
    """The parsed file (duplicate keys refused) and the name error messages call it."""
    source = display_path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    except OSError as error:
        raise ConfigError(f"{source}: cannot read ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    return data, source


def load_stage(path: Path) -> StageConfig:
    data, source = read_yaml(path)
    return parse_stage(data, name=path.stem, source=source)


def load_stages(config_dir: Path = CONFIG_DIR) -> dict[str, StageConfig]:
    """Every stage file, ordered dev, staging, prod, then any others by name."""
    paths = sorted(
        (p for p in config_dir.glob("*.yaml") if p.stem != "pipeline"),
        key=lambda p: (
            STAGE_ORDER.index(p.stem) if p.stem in STAGE_ORDER else len(STAGE_ORDER),
            p.stem,
        ),
    )
    return {path.stem: load_stage(path) for path in paths}


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(CONFIG_DIR.parent))
    except ValueError:
        return str(path)
