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


def test_every_field_is_documented() -> None:
    text = README.read_text()
    undocumented = [
        f"{model.__name__}.{name}"
        for model in models()
        for name in model.model_fields
        if f"`{name}`" not in text and not re.search(rf"`[\w.\[\]]*\b{name}\b", text) and name != "name"
    ]
    assert not undocumented, f"document in config/README.md: {undocumented}"


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
