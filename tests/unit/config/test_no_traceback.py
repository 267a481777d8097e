"""Whatever a user puts in any field of a stage file, loading ends in a ConfigError, never a traceback."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from config import ConfigError, parse_stage
from config.loader import read_cdk_context
from tests.unit.config.cases import stage_data

ODD_VALUES: tuple[Any, ...] = (None, True, "x", -1, 1.5, [], {"x": 1})


def leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, list) and node:
        for index, value in enumerate(node):
            yield from leaves(value, (*path, index))
    else:
        yield path


def replaced(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    node: Any = changed
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return changed


def test_every_field_with_every_odd_value_loads_or_says_why() -> None:
    stage = "prod"  # the largest file: two models, four node groups, speculative decoding, TLS
    data = stage_data(stage)
    context = read_cdk_context()
    tried = 0
    unnamed: list[str] = []
    for path in leaves(data):
        for value in ODD_VALUES:
            try:
                parse_stage(
                    replaced(data, path, value),
                    name=stage,
                    source=f"config/{stage}.yaml",
                    cdk_context=context,
                )
            except ConfigError as error:  # anything else escapes and fails the test with its traceback
                if not str(error).startswith(f"config/{stage}.yaml"):
                    unnamed.append(str(error))
            tried += 1
    assert tried > 700
    assert unnamed == []
