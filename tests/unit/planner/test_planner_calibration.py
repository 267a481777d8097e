"""Calibration: the replica model replayed against published vLLM benchmarks (planner/vllm_measurements.json).

The fit is refitted from the data file on every run; the constants in planner.profiles, the residual per
measurement and planner/README.md's table must all agree with it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from planner.calibration import (
    MEASUREMENTS_FILE,
    Measurement,
    calibrated_efficiencies,
    fit,
    load_measurements,
    replay,
    residual_table,
)
from planner.profiles import (
    CALIBRATED_EFFICIENCY,
    ESTIMATED_EFFICIENCY,
    GPU_SPECS,
    ProfileError,
    efficiency_for,
)

README = Path(__file__).resolve().parents[3] / "planner" / "README.md"

# (id, residual with the estimates, residual calibrated), in percent, as README.md's table states them.
EXPECTED = {
    "h100-llama31-8b-c1-tpot": (45.5, -0.1),
    "h100-llama31-8b-c4-tpot": (44.8, -0.1),
    "a100-40gb-llama31-8b-c1-tpot": (27.5, 0.1),
    "h100-llama31-8b-c16-tpot": (-8.7, -35.8),
    "h100-llama31-8b-c64-tpot": (-74.9, -81.2),
    "h100-llama31-8b-c1-ttft": (-25.4, -46.5),
    "a10g-tp2-llama3-8b-burst-duration": (-33.1, -33.1),
}


@pytest.fixture(scope="module")
def measurements() -> list[Measurement]:
    return load_measurements()


@pytest.fixture(scope="module")
def rows(measurements: list[Measurement]) -> dict[str, tuple[float, float]]:
    return {
        m.id: (round(before * 100, 1), round(after * 100, 1))
        for m, before, after in residual_table(measurements, CALIBRATED_EFFICIENCY)
    }


def test_every_measurement_cites_its_source_version_and_figure(measurements: list[Measurement]) -> None:
    for m in measurements:
        assert m.source.startswith("https://"), m.id
        assert m.vllm_version, m.id
        assert m.date, m.id
        assert m.figure, m.id
    assert {m.role for m in measurements} == {"fit", "held_out", "compare"}


def test_profiles_hold_what_the_data_file_fits(measurements: list[Measurement]) -> None:
    fitted = fit(measurements)
    assert calibrated_efficiencies(fitted) == CALIBRATED_EFFICIENCY
    assert fitted.families == ("A100", "H100")
    # The fit has one degree of freedom (3 points, 2 parameters) and uses it: not an exact solve.
    assert 0 < fitted.squared_error < 1e-4


def test_fitted_points_are_within_one_percent_and_far_better_than_the_estimates(
    rows: dict[str, tuple[float, float]], measurements: list[Measurement]
) -> None:
    for m in measurements:
        if m.role == "fit":
            before, after = rows[m.id]
            assert abs(after) <= 1.0, m.id
            assert abs(before) >= 20.0, m.id  # the estimates (75 %, 3 ms) were 28-46 % slow


def test_residual_table_is_pinned(rows: dict[str, tuple[float, float]]) -> None:
    assert rows == EXPECTED


def test_readme_states_the_same_residuals(measurements: list[Measurement]) -> None:
    text = README.read_text(encoding="utf-8")
    for m in measurements:
        before, after = EXPECTED[m.id]
        line = next((row.strip() for row in text.splitlines() if row.strip().startswith(f"| {m.id} |")), None)
        assert line is not None, f"README.md has no row for {m.id}"
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[-2:] == [f"{before:+.1f} %", f"{after:+.1f} %"], m.id
    fitted = CALIBRATED_EFFICIENCY["H100"]
    assert f"**{fitted.bandwidth * 100:.1f} %**" in text
    assert f"**{fitted.step_overhead_seconds * 1000:.2f} ms**" in text


def test_families_without_measurements_keep_the_labelled_estimates() -> None:
    for gpu in GPU_SPECS:
        expected = CALIBRATED_EFFICIENCY.get(gpu.split("-")[0], ESTIMATED_EFFICIENCY)
        assert efficiency_for(gpu) is expected
    for gpu in ("A10G", "L4", "L40S"):
        assert efficiency_for(gpu).source.startswith("estimates")
    assert efficiency_for("A100-80GB") is efficiency_for("A100-40GB")


def test_a10g_tensor_figure_is_not_the_a10s() -> None:
    a10g = GPU_SPECS["A10G"].fp16_dense_tflops
    assert a10g.value == pytest.approx(69.47)
    assert "estimate" in a10g.source
    assert "125 does not apply" in a10g.source


def test_replay_closed_loop_matches_a_hand_calculation(measurements: list[Measurement]) -> None:
    # Concurrency 1: every request runs alone, so its TPOT is one decode step of batch 1 at its context,
    # the context growing one token a step from the prompt (ReplicaProfile.decode_run_seconds).
    m = next(m for m in measurements if m.id == "a100-40gb-llama31-8b-c1-tpot")
    from planner.calibration import measurement_profile

    profile = measurement_profile(m, CALIBRATED_EFFICIENCY["A100"])
    steps = m.output_tokens - 1
    run = profile.decode_run_seconds(steps, 1, m.prompt_tokens)
    assert replay(m, CALIBRATED_EFFICIENCY["A100"]) == pytest.approx(run / steps * 1000, rel=1e-9)


def test_bad_measurement_is_a_clear_error(tmp_path: Path) -> None:
    entry = json.loads(MEASUREMENTS_FILE.read_text(encoding="utf-8"))["measurements"][0]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"measurements": [{**entry, "workload": "open_loop"}]}), encoding="utf-8")
    with pytest.raises(ProfileError, match=re.escape("measurements[0].workload = 'open_loop'; allowed:")):
        load_measurements(bad)
    bad.write_text(json.dumps({"measurements": [{**entry, "gpu": "L4"}]}), encoding="utf-8")
    with pytest.raises(ProfileError, match=re.escape("instance_type 'p5.48xlarge' with gpu 'L4'")):
        load_measurements(bad)
    bad.write_text(json.dumps({"measurements": [{**entry, "value": "6.48"}]}), encoding="utf-8")
    with pytest.raises(ProfileError, match=re.escape("measurements[0].value = '6.48'; expected a float")):
        load_measurements(bad)
