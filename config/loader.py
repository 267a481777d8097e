"""Read config/<stage>.yaml into a validated StageConfig, or fail with a message a human can act on."""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from config.base import PATTERN_IN_WORDS
from config.stage import StageConfig
from config.stages import STAGE_ORDER

CONFIG_DIR = Path(__file__).resolve().parent
CDK_CONTEXT_FILE = CONFIG_DIR.parent / "cdk.context.json"


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


def _node_at(root: yaml.Node | None, location: tuple[int | str, ...]) -> yaml.Node | None:
    """The YAML node a validation error's location points at (for its line and its text as written)."""
    node = root
    for part in location:
        if isinstance(node, yaml.MappingNode):
            node = next((value for key, value in node.value if key.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


_MESSAGE_PATH = re.compile(r"^[a-z_]+(?:\[[^\]\s]+\]|\.[a-z_]+)*")


def _node_named_in(root: yaml.Node | None, message: str) -> yaml.Node | None:
    """The node a cross-field rule's message starts with (`models[llama].versions[v1]...`), if any."""
    found = _MESSAGE_PATH.match(message)
    if root is None or not found:
        return None
    node: yaml.Node | None = root
    for part in re.findall(r"[a-z_]+|\[[^\]]+\]", found.group()):
        if isinstance(node, yaml.MappingNode) and not part.startswith("["):
            node = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and part.startswith("["):
            wanted = part[1:-1]
            node = next(
                (
                    item
                    for index, item in enumerate(node.value)
                    if wanted == str(index)
                    or (
                        isinstance(item, yaml.MappingNode)
                        and any(
                            key.value in ("id", "name") and value.value == wanted for key, value in item.value
                        )
                    )
                ),
                None,
            )
        else:
            return None
        if node is None:
            return None
    return node if node is not root else None


def _key_node_at(root: yaml.Node | None, location: tuple[int | str, ...]) -> yaml.Node | None:
    parent = _node_at(root, location[:-1])
    if isinstance(parent, yaml.MappingNode):
        return next((key for key, _ in parent.value if key.value == str(location[-1])), None)
    return None


def _unwrap(annotation: Any) -> Any:
    """The model class a field holds (through Optional, list[...] and dict[..., ...]), if any."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, dict, typing.Annotated):
        for arg in reversed(typing.get_args(annotation)):
            found = _unwrap(arg)
            if found is not None:
                return found
        return None
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _model_at(root: type[BaseModel], location: tuple[int | str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = root
    for part in location:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            continue  # a dict key such as a tag name
        model = _unwrap(field.annotation)
    return model


def _unknown_key_message(model: type[BaseModel], location: tuple[int | str, ...]) -> str:
    key = str(location[-1])
    parent = _model_at(model, location[:-1])
    allowed = sorted(parent.model_fields) if parent else []
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listing = f" allowed keys here: {', '.join(allowed)}" if allowed else " see config/README.md"
    return f"unknown key{hint} (check the spelling;{listing})"


def _message(problem: Any, model: type[BaseModel], node: yaml.Node | None) -> str:
    location = tuple(problem["loc"])
    message: str = problem["msg"].removeprefix("Value error, ")
    kind = problem["type"]
    value = problem.get("input")
    if kind == "extra_forbidden":
        return _unknown_key_message(model, location)
    if kind == "missing":
        return f"required but missing; add `{location[-1]}:` here (see config/README.md for its values)"
    if kind == "string_pattern_mismatch":
        pattern = problem.get("ctx", {}).get("pattern", "")
        return f"allowed: {PATTERN_IN_WORDS.get(pattern, f'text matching {pattern}')}"
    if kind == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
        written = node.value if isinstance(node, yaml.ScalarNode) else str(value)
        return f'{message}: YAML reads {written} as a number ({value!r}); quote it: "{written}"'
    return message


def describe_validation_error(
    error: ValidationError,
    source: str,
    *,
    kind: str = "stage",
    model: type[BaseModel] = StageConfig,
    root: yaml.Node | None = None,
) -> str:
    """One line per problem: file (and line), field path, message with the allowed values, the value given.

    A single problem is one line; several get a header line first.
    """
    lines = []
    for problem in error.errors():
        location = tuple(problem["loc"])
        field = _field_path(location)
        node = _node_at(root, location)
        if problem["type"] == "extra_forbidden":
            node = _key_node_at(root, location) or node
        if problem["type"] == "missing":  # point at the mapping's key line, e.g. `network:`
            node = (_key_node_at(root, location[:-1]) if len(location) > 1 else None) or root
        if not location:
            node = _node_named_in(root, problem["msg"].removeprefix("Value error, "))
        where = f"{source}:{node.start_mark.line + 1}" if node is not None else source
        value = problem.get("input")
        shown = (
            ""
            if isinstance(value, dict | list) or problem["type"] == "extra_forbidden"
            else f" (got {value!r})"
        )
        field_part = f"{field}: " if location else ""
        lines.append(f"{where}: {field_part}{_message(problem, model, node)}{shown}")
    if len(lines) == 1:
        return lines[0]
    header = f"{source}: invalid {kind} configuration ({len(lines)} problems)"
    return "\n".join([header, *(f"  {line}" for line in lines)])


def parse_stage(
    data: object,
    *,
    name: str,
    source: str,
    root: yaml.Node | None = None,
    cdk_context: dict[str, object] | None = None,
) -> StageConfig:
    """Validate already-parsed YAML; `source` is what error messages call the file.

    `root` (the composed YAML) lets messages give line numbers; `cdk_context` (cdk.context.json) lets
    availability zones be checked against the account's real ones.
    """
    if data is None:
        raise ConfigError(f"{source}: the file is empty (or only comments); allowed: a stage's settings")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings at the top level")
    if "name" in data:
        raise ConfigError(f"{source}: name: the stage name comes from the file name; remove it")
    try:
        return StageConfig.model_validate({**data, "name": name}, context={"cdk_context": cdk_context})
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, source, root=root)) from None


def read_yaml_document(path: Path) -> tuple[object, yaml.Node | None, str]:
    """The parsed file (duplicate keys refused), its node tree (for line numbers) and its display name."""
    source = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{source}: cannot read ({error.strerror})") from None
    loader = _UniqueKeyLoader(text)
    loader.name = source  # marks then say the file, not "<unicode string>"
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        at = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = " ".join(part for part in (error.context, error.problem) if part)
        raise ConfigError(f"{at}: not valid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    finally:
        loader.dispose()
    return data, root, source


def read_cdk_context(path: Path = CDK_CONTEXT_FILE) -> dict[str, object] | None:
    """The committed CDK context (cached AZ lookups), or None when there is no such file."""
    if not path.exists():
        return None
    try:
        context: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ConfigError(f"{display_path(path)}: not valid JSON ({error})") from None
    return context


def load_stage(path: Path, *, cdk_context: dict[str, object] | None = None) -> StageConfig:
    data, root, source = read_yaml_document(path)
    return parse_stage(data, name=path.stem, source=source, root=root, cdk_context=cdk_context)


def stage_files(config_dir: Path = CONFIG_DIR) -> list[Path]:
    """Every stage file, in STAGE_ORDER (config/stages.py), then any others by name."""
    return sorted(
        (p for p in config_dir.glob("*.yaml") if p.stem != "pipeline"),
        key=lambda p: (
            STAGE_ORDER.index(p.stem) if p.stem in STAGE_ORDER else len(STAGE_ORDER),
            p.stem,
        ),
    )


def load_stages(
    config_dir: Path = CONFIG_DIR, *, cdk_context_file: Path = CDK_CONTEXT_FILE
) -> dict[str, StageConfig]:
    """Every stage, in the order of ``stage_files``."""
    context = read_cdk_context(cdk_context_file)
    return {path.stem: load_stage(path, cdk_context=context) for path in stage_files(config_dir)}


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(CONFIG_DIR.parent))
    except ValueError:
        return str(path)
