"""config/README.md lists every rule and field of the models, and its facts block is the generated one."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from config import ConfigError, load_stage
from config.loader import read_cdk_context
from config.pipeline import PipelineConfig
from config.stage import StageConfig
from tools.config_facts import BEGIN, END, render

README = Path(__file__).resolve().parents[3] / "config" / "README.md"


def models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []

    def walk(annotation: object) -> None:
        if typing.get_origin(annotation) is not None:
            for arg in typing.get_args(annotation):
                walk(arg)
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation not in found:
            found.append(annotation)
            for field in annotation.model_fields.values():
                walk(field.annotation)

    walk(StageConfig)
    walk(PipelineConfig)
    return found


def validators() -> set[str]:
    """Every validator as Class._name, named after the class that defines it."""
    names = set()
    for model in models():
        decorators = model.__pydantic_decorators__
        for decorator in [*decorators.field_validators.values(), *decorators.model_validators.values()]:
            names.add(decorator.func.__qualname__)  # type: ignore[attr-defined]
    return names


def documented_validators(text: str) -> set[str]:
    rules = text[text.index("## Rules") : text.index(BEGIN)]
    documented = set()
    for row in re.findall(r"^\| (`[A-Za-z]+\._\w+`.*?) \|", rules, flags=re.M):
        cls = re.match(r"`([A-Za-z]+)\.", row)
        assert cls is not None
        documented |= {f"{cls.group(1)}.{name}" for name in re.findall(r"`(?:[A-Za-z]+\.)?(_\w+)`", row)}
    return documented


def test_every_validator_is_listed_in_the_rules_table() -> None:
    text = README.read_text()
    missing = validators() - documented_validators(text)
    stale = documented_validators(text) - validators()
    assert not missing, f"add to config/README.md#rules: {sorted(missing)}"
    assert not stale, f"config/README.md#rules names validators that no longer exist: {sorted(stale)}"


# Fields documented nowhere in a table, on purpose: the stage name is the file name.
NOT_IN_A_TABLE = {"name"}


def nested_models(annotation: object, in_list: bool = False) -> list[tuple[type[BaseModel], bool]]:
    """The models inside a field's annotation, each with whether it sits in a list."""
    origin = typing.get_origin(annotation)
    if origin is not None:
        in_list = in_list or origin in (list, tuple)
        return [found for arg in typing.get_args(annotation) for found in nested_models(arg, in_list)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, in_list)]
    return []


def field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every field path below `model`, e.g. ``models[].slo.window_days``."""
    found: list[str] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        found.append(path)
        for sub_model, in_list in nested_models(field.annotation):
            found += field_paths(sub_model, f"{path}[]." if in_list else f"{path}.")
    return found


def documented_rows(text: str) -> tuple[dict[str, str], set[str]]:
    """({field path: the row's text} of every field table, {paths with a section of their own})."""
    rows: dict[str, str] = {}
    sections: set[str] = set()
    section: str | None = None
    for line in text[: text.index(BEGIN)].splitlines() + text[text.index(END) :].splitlines():
        if line.startswith("#"):
            named = re.search(r"`([^`]+)`", line)
            if line.startswith("## Pipeline"):
                section = "pipeline"
            elif line == "## Top level":
                section = ""
            else:
                section = named.group(1).removesuffix("[]") if named and line.startswith("##") else None
            if section:
                sections.add(section)
            continue
        if section is None or not line.startswith("| `"):
            continue
        prefix = f"{section}." if section else ""
        names = re.findall(r"`([^`]+)`", line.split("|")[1])
        parent = names[0].rsplit(".", 1)[0] + "." if "." in names[0] else ""
        for index, name in enumerate(names):
            path = prefix + (parent + name if index and "." not in name else name)
            rows[path.replace("[].", ".").removesuffix("[]")] = line
    return rows, sections


def test_every_field_has_a_row_in_its_table_and_every_row_a_field() -> None:
    """Each field is a row of its parent's table, has a section or rows of its own, or is named in the
    row of the mapping it belongs to; and no row names a field that does not exist."""
    rows, sections = documented_rows(README.read_text())
    fields = field_paths(StageConfig) + [f"pipeline.{path}" for path in field_paths(PipelineConfig)]
    plain = {path.replace("[].", "."): path for path in fields}
    missing = []
    for path, model_path in plain.items():
        name = path.rsplit(".", 1)[-1]
        ancestors = [path.rsplit(".", depth)[0] for depth in range(1, path.count(".") + 1)]
        named_in_an_ancestors_row = any(f"`{name}`" in rows.get(ancestor, "") for ancestor in ancestors)
        sub_fields_have_rows = any(row.startswith(f"{path}.") for row in rows)
        if (
            path in rows
            or path in sections
            or named_in_an_ancestors_row
            or sub_fields_have_rows
            or model_path in NOT_IN_A_TABLE
        ):
            continue
        missing.append(model_path)
    stale = sorted(set(rows) - set(plain))
    assert not missing, f"document in config/README.md (a row in the parent's table): {missing}"
    assert not stale, f"config/README.md has rows for fields that do not exist: {stale}"


def test_the_facts_block_is_generated() -> None:
    text = README.read_text()
    block = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert block == render(), "run `python -m tools.config_facts --write`"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("vpc_cidr: 10.10.0.0/16", "vpc_cidr: 10.10.0.0/18"),
        ('kubernetes_version: "1.36"', "kubernetes_version: 1.30"),
        ("  nat_gateways: 1", "  nat_gatways: 1"),
    ],
)
def test_the_example_messages_are_what_the_loader_prints(old: str, new: str, tmp_path: Path) -> None:
    path = tmp_path / "dev.yaml"
    path.write_text((README.parent / "dev.yaml").read_text().replace(old, new))
    with pytest.raises(ConfigError) as raised:
        load_stage(path, cdk_context=read_cdk_context())
    message = str(raised.value).replace(f"{tmp_path}/", "config/")
    assert message in README.read_text()
