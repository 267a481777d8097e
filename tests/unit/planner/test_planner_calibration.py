"""Calibrated profiles against the published vLLM measurements in planner/vllm_measurements.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.profiles import (
    CALIBRATED,
    GPU_SPECS,
    MAX_BANDWIDTH_EFFICIENCY,
    UNCALIBRATED,
    ProfileError,
    fit_calibration,
    load_measurements,
    relative_residual,
)

# Stated tolerance: the fitted model is within 3 % of every measurement it was fitted to. The data pin
# three points with three parameters, so this mainly proves the fit converged and the constants match.
FIT_TOLERANCE = 0.03
# Residuals per measurement, as published in planner/README.md (model vs measured, percent).
README_RESIDUALS = {
    "h100-llama31-8b-c1": (45.6, -0.1),
    "h100-llama31-8b-c4": (45.3, 0.2),
    "h100-llama31-8b-c16": (-7.4, -34.9),
    "a100-40gb-llama31-8b-c1": (27.5, 0.0),
}


def test_every_measurement_is_cited() -> None:
    raw = json.loads(Path("planner/vllm_measurements.json").read_text())["measurements"]
    for entry in raw:
        assert entry["source"].startswith("https://"), entry["id"]
        for field in ("gpu", "model", "vllm_version", "batch", "figure", "date"):
            assert entry[field], (entry["id"], field)


def test_constants_are_the_fit_of_the_data_file() -> None:
    fitted = fit_calibration(load_measurements())
    assert fitted.step_overhead_seconds == pytest.approx(CALIBRATED.step_overhead_seconds, abs=1e-5)
    assert fitted.bandwidth_efficiency == pytest.approx(CALIBRATED.bandwidth_efficiency, abs=1e-3)
    assert all(0 < e <= MAX_BANDWIDTH_EFFICIENCY.value for e in fitted.bandwidth_efficiency.values())


def test_fitted_model_is_within_tolerance_of_each_fitted_measurement() -> None:
    for measurement in load_measurements():
        if measurement.used_in_fit:
            residual = relative_residual(measurement, CALIBRATED)
            assert abs(residual) < FIT_TOLERANCE, (measurement.id, residual)


def test_fitting_improves_on_the_uncalibrated_model() -> None:
    used = [m for m in load_measurements() if m.used_in_fit]
    before = sum(relative_residual(m, UNCALIBRATED) ** 2 for m in used)
    after = sum(relative_residual(m, CALIBRATED) ** 2 for m in used)
    assert after < before / 100
    for m in used:
        assert abs(relative_residual(m, CALIBRATED)) < abs(relative_residual(m, UNCALIBRATED)), m.id


def test_readme_residuals_are_current() -> None:
    measurements = {m.id: m for m in load_measurements()}
    assert set(measurements) == set(README_RESIDUALS)
    readme = Path("planner/README.md").read_text()
    for name, (before, after) in README_RESIDUALS.items():
        m = measurements[name]
        assert round(relative_residual(m, UNCALIBRATED) * 100, 1) == before, name
        assert round(relative_residual(m, CALIBRATED) * 100, 1) == after, name
        rows = [line for line in readme.splitlines() if line.strip().startswith(f"| {name} ")]
        assert len(rows) == 1, name
        assert rows[0].rstrip().endswith(f"| {before:+.1f} % | {after:+.1f} % |"), rows[0]


def test_held_out_point_is_reported_not_hidden() -> None:
    # Concurrency 16 mixes prefills into decode steps: the pure decode model is faster than measured.
    held_out = next(m for m in load_measurements() if not m.used_in_fit)
    assert relative_residual(held_out, CALIBRATED) < -0.2


def test_a10g_tensor_figure_is_not_the_a10s() -> None:
    assert GPU_SPECS["A10G"].fp16_dense_tflops.value == pytest.approx(69.47)


def test_bad_measurement_file_names_file_field_and_value(tmp_path: Path) -> None:
    raw = json.loads(Path("planner/vllm_measurements.json").read_text())
    raw["measurements"][0]["batch"] = "one"
    bad = tmp_path / "m.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(ProfileError, match=r"m\.json: measurements\[0\]\.batch = 'one'; expected a int"):
        load_measurements(bad)
    raw["measurements"][0]["batch"] = 1
    raw["measurements"][0]["gpu"] = "B200"
    bad.write_text(json.dumps(raw))
    with pytest.raises(ProfileError, match=r"gpu 'B200'.*allowed gpus: A10G"):
        load_measurements(bad)
