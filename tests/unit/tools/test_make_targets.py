"""The Makefile a new user drives everything with: help, the stage targets, and their guard rails.

Targets run with `make -n` (print, do not run) or with the CDK CLI replaced by `echo`, so no test
installs, synthesises or calls AWS.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.synth import SynthResult

ROOT = Path(__file__).resolve().parents[3]
PHASE = ROOT / "tools" / "phase.sh"
INTERNAL_TARGETS = {"require-stage", "check-stage", "synth-stage"}


def make(*args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    # Without the parent make's flags (make test runs pytest under make -j2).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(  # noqa: S603 (the repository's own Makefile, test-controlled arguments)
        [shutil.which("make") or "make", "--no-print-directory", "-o", "install", *args],
        cwd=ROOT,
        env=env,
        stdin=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def phony_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith(".PHONY:")]
    return set(line.removeprefix(".PHONY:").split())


def test_help_describes_every_target_a_user_runs() -> None:
    result = make("help")
    assert result.returncode == 0
    described = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert described == phony_targets() - INTERNAL_TARGETS


def test_help_is_the_default_target() -> None:
    assert make().stdout == make("help").stdout


@pytest.mark.parametrize("target", ["diff", "deploy", "destroy"])
def test_stage_targets_refuse_to_run_without_a_stage(target: str) -> None:
    result = make(target)
    assert result.returncode != 0
    assert f"Name the stage: make {target} STAGE=dev (or staging, prod)" in result.stderr


@pytest.mark.parametrize(
    ("target", "command"),
    [
        ("diff", "diff --app cdk.out 'dev/*'"),
        ("deploy", "deploy --app cdk.out 'dev/*'"),
        ("destroy", "destroy --app cdk.out --force 'dev/*'"),
    ],
)
def test_stage_targets_use_the_pinned_cli_on_one_synthesised_stage_without_lookups(
    target: str, command: str
) -> None:
    lines = make("-n", target, "STAGE=dev").stdout.splitlines()
    synth = [line for line in lines if " synth " in line]
    assert synth, lines
    assert (
        "node_modules/.bin/cdk --no-lookups synth --quiet --no-notices -c stage=dev --output cdk.out"
        in synth[0]
    )
    assert f"node_modules/.bin/cdk --no-lookups {command}" in lines


@pytest.mark.parametrize("target", ["synth", "diff", "deploy", "destroy"])
@pytest.mark.parametrize("stage", ["qa", "pipeline"])
def test_an_unknown_stage_stops_before_the_cli_starts(target: str, stage: str) -> None:
    result = make(target, f"STAGE={stage}", "CDK_CLI=echo CLI")
    assert result.returncode != 0
    assert f"STAGE={stage}: no such stage; allowed: dev prod staging (one per config/<stage>.yaml)" in (
        result.stderr
    )
    assert "CLI" not in result.stdout


def test_synth_of_one_stage_passes_it_as_context() -> None:
    out = make("-n", "synth", "STAGE=dev").stdout
    assert "--no-lookups synth --quiet --no-notices -c stage=dev --output cdk.out" in out
    assert "python -m tools.gitops_export dist dev" in out


def test_synth_of_everything_passes_no_stage() -> None:
    out = make("-n", "synth").stdout
    assert "-c stage=" not in out
    assert "--no-lookups synth --quiet --no-notices  --output cdk.out" in out


def destroy(synth: SynthResult, *extra: str) -> subprocess.CompletedProcess[str]:
    """make destroy STAGE=dev on the session's synthesised app, with `echo CLI` as the CDK CLI."""
    return make(
        "-o", "synth-stage", "destroy", "STAGE=dev", f"OUT={synth.outdir}", "CDK_CLI=echo CLI", *extra
    )


def test_destroy_lists_what_stays_and_deletes_nothing_unconfirmed(synth: SynthResult) -> None:
    result = destroy(synth)
    assert result.returncode != 0
    assert "Deleting stage dev keeps" in result.stdout
    assert "CLI destroy" not in result.stdout
    assert "Not confirmed; nothing deleted." in result.stderr


def test_destroy_runs_once_the_stage_name_is_confirmed(synth: SynthResult) -> None:
    result = destroy(synth, "CONFIRM=dev")
    assert result.returncode == 0, result.stderr
    assert f"CLI destroy --app {synth.outdir} --force dev/*" in result.stdout.splitlines()


def test_destroy_confirmed_for_another_stage_deletes_nothing(synth: SynthResult) -> None:
    result = destroy(synth, "CONFIRM=prod")
    assert result.returncode != 0
    assert "CLI destroy" not in result.stdout


def run_phase(tmp_path: Path, *command: str, show_after: str = "20") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PHASE_LOG_DIR": str(tmp_path), "PHASE_SHOW_AFTER": show_after}
    return subprocess.run(  # noqa: S603 (fixed script path, test-controlled command)
        [str(PHASE), "step", *command], env=env, capture_output=True, text=True, check=False, cwd=tmp_path
    )


def test_a_quick_phase_is_one_line_with_its_duration(tmp_path: Path) -> None:
    result = run_phase(tmp_path, "bash", "-c", "echo chatter")
    assert result.returncode == 0
    assert re.fullmatch(r"step \.\.\. done in \d+ s\n", result.stdout)
    assert (tmp_path / "step.log").read_text() == "chatter\n"


def test_a_slow_phase_shows_its_output_live(tmp_path: Path) -> None:
    result = run_phase(tmp_path, "bash", "-c", "echo progress; sleep 1.5", show_after="1")
    assert result.returncode == 0
    assert "    progress\n" in result.stdout
    assert re.search(r"^step: done in \d+ s$", result.stdout, re.MULTILINE)


def test_a_failed_phase_shows_its_log_and_keeps_the_exit_code(tmp_path: Path) -> None:
    result = run_phase(tmp_path, "bash", "-c", "echo what went wrong; exit 3")
    assert result.returncode == 3
    assert "    what went wrong" in result.stderr
    assert f"step: failed after 0 s (exit 3); full log: {tmp_path}/step.log" in result.stderr


def test_committed_context_is_in_the_cli_layout() -> None:
    """The CLI saves cdk.context.json as JSON with two-space indents and a final newline; committed in that
    layout, a CLI run that does save it (e.g. one without --no-lookups) leaves no diff."""
    text = (ROOT / "cdk.context.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2) + "\n"


def test_node_20_22_and_24_are_the_declared_engines() -> None:
    package = json.loads((ROOT / "package.json").read_text())
    assert package["engines"]["node"] == "^20 || ^22 || ^24"


def test_a_phase_marked_never_stays_one_line_however_slow(tmp_path: Path) -> None:
    result = run_phase(tmp_path, "bash", "-c", "echo noise; sleep 1.5", show_after="never")
    assert result.returncode == 0
    assert re.fullmatch(r"step \.\.\. done in \d+ s\n", result.stdout)
