"""Capacity and cost planner: replay a request trace against a stage's scaling rules and price it.

When ``make install`` has compiled the simulator's hot path (tools/compile_planner.py), the compiled
modules are loaded in place of their sources, but only while every source is unchanged since the
build; otherwise everything runs as plain Python. Both give the same results.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_COMPILED = _HERE.parent / "build" / "planner-compiled"


def compiled_is_current(compiled_dir: Path = _COMPILED, source_dir: Path = _HERE) -> bool:
    """Whether a build exists and every source it was compiled from is unchanged (sha256)."""
    try:
        recorded = json.loads((compiled_dir / "sources.json").read_text(encoding="utf-8"))
        return bool(recorded) and all(
            hashlib.sha256((source_dir / name).read_bytes()).hexdigest() == digest
            for name, digest in recorded.items()
        )
    except (OSError, ValueError, AttributeError):
        return False


if compiled_is_current():
    __path__.insert(0, str(_COMPILED / "planner"))


def compiled() -> bool:
    """Whether the simulator runs mypyc-compiled (for benchmarks and reports)."""
    from planner import sim

    return sim.__file__ is not None and not sim.__file__.endswith(".py")
