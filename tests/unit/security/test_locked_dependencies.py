"""Issue #14 item 6: every Python dependency is pinned with hashes, and installed with
`pip --require-hashes` by `make install` (which the pipeline's synth step runs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, list[str]]:
    """{name==version: sha256 hashes} of a pip-compile style lock file."""
    entries: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        assert not line.startswith(("-e", "git+", "http")), f"{path.name}: unpinned source {line!r}"
        match = REQUIREMENT.match(line)
        if match:
            current = f"{normalise(match[1])}=={match[2]}"
            entries[current] = []
        for digest in re.findall(r"--hash=sha256:([0-9a-f]{64})", line):
            assert current is not None
            entries[current].append(digest)
    return entries


def direct(path: Path) -> list[str]:
    """The pins of a hand-edited requirements file, as name==version."""
    pins = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-r"):
            match = REQUIREMENT.match(line)
            assert match, f"{path.name}: {line!r} is not pinned with =="
            pins.append(f"{normalise(match[1])}=={match[2]}")
    return pins


@pytest.mark.parametrize(
    ("source", "lock"),
    [
        ("requirements.txt", "requirements.lock"),
        ("requirements-dev.txt", "requirements-dev.lock"),
        ("requirements-checkov.txt", "requirements-checkov.lock"),
    ],
)
def test_every_locked_requirement_has_a_hash_and_every_direct_pin_is_locked(source: str, lock: str) -> None:
    entries = locked(ROOT / lock)
    assert entries
    for requirement, hashes in entries.items():
        assert hashes, f"{lock}: {requirement} has no --hash"
    for requirement in direct(ROOT / source):
        assert requirement in entries, (
            f"{source} pins {requirement}; {lock} does not (run tools/lock_requirements.sh)"
        )


def test_dev_lock_contains_the_runtime_lock() -> None:
    assert set(locked(ROOT / "requirements.lock")) <= set(locked(ROOT / "requirements-dev.lock"))


def test_make_install_uses_the_lock_with_require_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    pip_lines = [line.strip() for line in makefile.splitlines() if "pip install" in line]
    assert pip_lines
    for line in pip_lines:
        assert "--require-hashes" in line, line
        assert re.search(r"-r requirements(-dev|-checkov)\.lock$", line), line
    assert any(line.endswith("-r requirements-dev.lock") for line in pip_lines)
