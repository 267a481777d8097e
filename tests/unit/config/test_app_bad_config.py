"""A bad stage never reaches cdk synth: the app prints the one-line message and exits 1, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import app
from tests.unit.config.cases import CASES, Case, stage_data

ROOT = Path(__file__).resolve().parents[3]


def write_stage(config_dir: Path, case: Case) -> None:
    data = stage_data(case.stage)
    case.mutate(data)
    (config_dir / f"{case.stage}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_app_exits_with_the_one_line_message(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_stage(tmp_path, case)

    def no_synth(*args: object, **kwargs: object) -> None:
        raise AssertionError("stacks were built from a bad stage")

    monkeypatch.setattr(app, "build_app", no_synth)
    with pytest.raises(SystemExit) as exited:
        app.main(pipeline_file=tmp_path / "no-pipeline.yaml", config_dir=tmp_path)
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"{tmp_path / case.stage}.yaml:")
    assert case.expected[0] in err


def test_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    case = next(case for case in CASES if case.id == "vpc-too-small-for-subnets")
    write_stage(tmp_path, case)
    script = (
        "import sys; from pathlib import Path; import app; "
        f"app.main(pipeline_file=Path({str(tmp_path / 'none.yaml')!r}), config_dir=Path({str(tmp_path)!r}))"
    )
    result = subprocess.run(  # noqa: S603 - a fixed interpreter and script
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    text = (tmp_path / "dev.yaml").read_text().splitlines()
    line = next(number for number, row in enumerate(text, start=1) if "vpc_cidr:" in row)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"{tmp_path / 'dev.yaml'}:{line}: network.vpc_cidr 10.10.0.0/18 cannot hold the subnets of 2 "
        "availability "
        "zones (a /24 public and a /19 private subnet each, aligned); allowed: a /17 or larger VPC"
    ]
