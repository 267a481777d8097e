"""Compile the simulator's hot path with mypyc; ``make install`` runs this (the .py files stay the source).

``python tools/compile_planner.py`` type-checks and compiles the modules below to C extensions in
``build/planner-compiled/planner/`` (git-ignored) and writes ``sources.json`` there: the sha256 of each
compiled source. ``planner/__init__.py`` puts that directory first on the package's path only while
every hash matches, so an edited module runs as plain Python until the next ``make install`` instead of
being shadowed by a stale build. Compiled and plain runs give bit-identical results (mypyc keeps
Python's float and int semantics; tests/unit/planner/test_planner_compiled.py checks both paths against
the golden digest). Exit code 1 with mypyc's message when a module does not compile.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "planner-compiled"
# The per-request and per-step code (replica, event loop, cluster, controllers) and what it calls on
# every step (the profile's time model, the entities) or every HPA sync (hpa: its dataclasses stay
# plain classes, as they travel pickled in SimSetup). The rest of the planner runs once per plan.
MODULES = ("entities", "events", "profiles", "replica", "cluster", "controllers", "sim", "hpa")
# One shared library for the group, inside the package (planner.hot_path__mypyc), not at top level.
GROUP = "planner.hot_path"


def source_hashes() -> dict[str, str]:
    return {
        f"{name}.py": hashlib.sha256((ROOT / "planner" / f"{name}.py").read_bytes()).hexdigest()
        for name in MODULES
    }


def main() -> int:
    from mypyc.build import mypycify
    from setuptools import setup

    started = time.perf_counter()
    hashes = source_hashes()
    shutil.rmtree(OUT, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="planner-mypyc-") as temp:
        try:
            extensions = mypycify(
                [f"planner/{name}.py" for name in MODULES], group_name=GROUP, target_dir=f"{temp}/c"
            )
            setup(
                name="planner-hot-path",
                packages=[],
                py_modules=[],
                ext_modules=extensions,
                script_args=["--quiet", "build_ext", "--build-lib", str(OUT), "--build-temp", f"{temp}/o"],
            )
        except SystemExit as failed:  # mypyc and setuptools report errors by exiting
            print(f"planner: mypyc could not compile the hot path ({failed}); it runs as plain Python")
            shutil.rmtree(OUT, ignore_errors=True)
            return 1
    (OUT / "sources.json").write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"planner: compiled {', '.join(MODULES)} with mypyc in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
