"""The docs a new user follows: commands that work outside the venv, and every placeholder named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCS = sorted(
    path
    for path in ROOT.rglob("*.md")
    if not {"node_modules", ".venv", "cdk.out", "dist", ".pytest_cache"} & set(path.relative_to(ROOT).parts)
)
# A command that fails on a fresh clone: python outside .venv/bin, or a CDK CLI that is not the pinned one.
BARE_COMMAND = re.compile(
    r"(?<![\w/.-])(?:python3? -m |python3? bench/|npx |cdk (?:bootstrap|deploy|diff|synth|destroy|ls)\b)"
)
# An account id where one appears: `account: "…"`, a context key's `account=…`, or an ARN's account field.
ACCOUNT_ID = re.compile(r"(?:account:\s*\"?|account=|arn:aws[\w-]*:[\w-]+:[\w-]*:)(\d{12})\b")


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_docs_run_python_from_the_venv_and_the_pinned_cdk_cli(doc: Path) -> None:
    bare = [
        f"{doc.relative_to(ROOT)}:{number}: {line.strip()}"
        for number, line in enumerate(doc.read_text().splitlines(), start=1)
        if BARE_COMMAND.search(line)
    ]
    assert bare == [], "use .venv/bin/python, a make target or node_modules/.bin/cdk"


def placeholder_table() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("### Placeholders to replace before a deploy", 1)[1].split("\n### ", 1)[0]


def test_every_account_id_in_the_shipped_config_is_a_documented_placeholder() -> None:
    files = [*sorted((ROOT / "config").glob("*.yaml")), ROOT / "cdk.context.json"]
    accounts = {account for path in files for account in ACCOUNT_ID.findall(path.read_text())}
    assert accounts, "the shipped config names accounts"
    documented = set(re.findall(r"`(\d{12})`", placeholder_table()))
    assert accounts <= documented
