"""Calibrate the replica model against published vLLM benchmarks by replaying them.

Each measurement in ``planner/vllm_measurements.json`` names a benchmark's workload (a closed loop of N
requests in flight, as ``vllm bench serve --max-concurrency N --request-rate inf`` runs it, or a burst
of requests sent at once), its lengths and one published figure. :func:`replay` runs that workload
through the planner's own V1 replica (planner/replica.py, with the time model of planner/profiles.py)
and reads the same figure off the simulated requests, so a fit here fits what the planner simulates:
mixed steps, chunked prefill and the token budget included.

:func:`fit` is least squares on relative residuals over the measurements whose role is ``fit``. The
parameters are one decode bandwidth efficiency and one step overhead, shared by the families that have
measurements: the points found cannot separate them per family (see planner/README.md, "Calibration").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from config.catalog import GPU_INSTANCE_TYPES
from config.serving import EngineOptions, ModelVersion
from planner.events import EventKind
from planner.profiles import (
    ARCHITECTURES,
    ESTIMATED_EFFICIENCY,
    GPU_SPECS,
    PREFILL_MFU,
    Efficiency,
    ProfileError,
    ReplicaProfile,
    replica_profile,
)
from planner.sim import Autoscaling, GroupSpec, SimSetup, Simulation
from planner.startup import StartupChain, fixed

MEASUREMENTS_FILE = Path(__file__).with_name("vllm_measurements.json")
WORKLOADS = ("closed_loop", "burst")
METRICS = ("tpot_p50_ms", "ttft_p50_ms", "duration_s")
ROLES = ("fit", "held_out", "compare")
# The Hugging Face ids the measured models were served from (the profile matches the architecture on it).
_SOURCES = {
    "llama-3.1-8b": "meta-llama/Llama-3.1-8B-Instruct",
    "llama-3.1-70b": "meta-llama/Llama-3.1-70B-Instruct",
}


@dataclass(frozen=True)
class Measurement:
    id: str
    gpu: str
    instance_type: str
    model: str
    tensor_parallel: int
    workload: str
    concurrency: int
    num_requests: int
    prompt_tokens: int
    output_tokens: int
    assumed: str
    metric: str
    value: float
    vllm_version: str
    figure: str
    source: str
    date: str
    role: str
    note: str


_FIELDS: dict[str, type] = {
    "id": str,
    "gpu": str,
    "instance_type": str,
    "model": str,
    "tensor_parallel": int,
    "workload": str,
    "concurrency": int,
    "num_requests": int,
    "prompt_tokens": int,
    "output_tokens": int,
    "assumed": str,
    "metric": str,
    "value": float,
    "vllm_version": str,
    "figure": str,
    "source": str,
    "date": str,
    "role": str,
    "note": str,
}


def load_measurements(path: Path = MEASUREMENTS_FILE) -> list[Measurement]:
    """Read and check the data file; a bad entry is an error naming the file, entry, field and value."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))["measurements"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ProfileError(f"{path}: cannot read a 'measurements' list ({error})") from error
    found = []
    for index, entry in enumerate(raw):
        where = f"{path}: measurements[{index}]"
        if not isinstance(entry, dict):
            raise ProfileError(f"{where} is {entry!r}; expected an object")
        for field, kind in _FIELDS.items():
            value = entry.get(field)
            ok = isinstance(value, kind) and not isinstance(value, bool)
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                ok = True
            if not ok:
                raise ProfileError(f"{where}.{field} = {value!r}; expected a {kind.__name__}")
        _check(where, entry)
        found.append(Measurement(**{field: entry[field] for field in _FIELDS}))
    ids = [m.id for m in found]
    if len(set(ids)) != len(ids):
        raise ProfileError(f"{path}: measurement ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
    return found


def _check(where: str, entry: dict[str, object]) -> None:
    choices = {"workload": WORKLOADS, "metric": METRICS, "role": ROLES, "model": tuple(_SOURCES)}
    for field, allowed in choices.items():
        if entry[field] not in allowed:
            raise ProfileError(f"{where}.{field} = {entry[field]!r}; allowed: {', '.join(allowed)}")
    instance = GPU_INSTANCE_TYPES.get(str(entry["instance_type"]))
    if instance is None or instance.gpu_model != entry["gpu"] or entry["gpu"] not in GPU_SPECS:
        raise ProfileError(
            f"{where}: instance_type {entry['instance_type']!r} with gpu {entry['gpu']!r}; the instance "
            f"type must be in config.catalog.GPU_INSTANCE_TYPES with that GPU (one of {', '.join(GPU_SPECS)})"
        )
    for field in ("tensor_parallel", "num_requests", "prompt_tokens", "output_tokens"):
        if not int(str(entry[field])) >= 1:
            raise ProfileError(f"{where}.{field} = {entry[field]!r}; must be at least 1")
    if entry["workload"] == "closed_loop" and not 1 <= int(str(entry["concurrency"])) <= int(
        str(entry["num_requests"])
    ):
        raise ProfileError(
            f"{where}.concurrency = {entry['concurrency']!r}; a closed loop needs 1 <= concurrency <= "
            "num_requests"
        )
    if not float(str(entry["value"])) > 0:
        raise ProfileError(f"{where}.value = {entry['value']!r}; must be > 0")


def measurement_profile(measurement: Measurement, efficiency: Efficiency | None = None) -> ReplicaProfile:
    """The planner's profile of the benchmark's server: vLLM's defaults, 16-bit weights, its TP."""
    version = ModelVersion(
        name="calibration",
        source=_SOURCES[measurement.model],
        served_model_name=measurement.model,
        image_tag="v0.33.0",
        gpus_per_replica=measurement.tensor_parallel,
        node_groups=["calibration"],
        weight=100,
        # vLLM's own defaults for a server started without flags (max_num_seqs 256 in V1 on GPUs, long
        # enough a context for every workload here); the lengths never come near either.
        engine=EngineOptions(max_model_len=8192, max_num_seqs=256),
    )
    assert measurement.model in ARCHITECTURES
    return replica_profile(version, measurement.instance_type, efficiency=efficiency)


class _Replay(Simulation):
    """One replica, no autoscaling; a closed loop sends the next request when one finishes."""

    def __init__(self, setup: SimSetup, measurement: Measurement) -> None:
        n = measurement.num_requests
        closed = measurement.workload == "closed_loop"
        arrival = np.full(n, math.inf) if closed else np.zeros(n)
        super().__init__(
            setup,
            arrival,
            np.full(n, measurement.prompt_tokens, dtype=np.int64),
            np.full(n, measurement.output_tokens, dtype=np.int64),
        )
        self.closed = closed
        self.initial = measurement.concurrency if closed else n
        self.sent = 0
        self.due: list[float] = []

    def _finish(self, request: int, now: float) -> None:
        super()._finish(request, now)
        if self.closed:
            self.due.append(now)

    def _send(self, now: float) -> None:
        if self.sent < len(self.arrival):
            self.arrival[self.sent] = now
            self._arrive(self.sent, now)
            self.sent += 1

    def replay(self) -> None:
        self._initial_state()
        for _ in range(self.initial):
            self._send(0.0)
        handlers = {
            EventKind.NODE_READY: self._node_ready,
            EventKind.POD_READY: self._pod_ready,
            EventKind.PREFILL_DONE: self._prefill_done,
            EventKind.RUN_END: self._run_end,
        }
        while (event := self.pop_event()) is not None:
            time, kind, _, subject, version = event
            handlers[kind](time, subject, version)
            while self.due:
                self._send(self.due.pop(0))


def _setup(profile: ReplicaProfile, instance_type: str) -> SimSetup:
    instance = GPU_INSTANCE_TYPES[instance_type]
    group = GroupSpec("calibration", instance_type, False, instance.gpus, 1, 1, 1, 1.0, False)
    return SimSetup(
        profile=profile,
        groups=(group,),
        autoscaling=Autoscaling(kind="static", static_replicas=1),
        horizon_seconds=math.inf,
        scrape_seconds=15,
        metric_lag_seconds=0,
        ca_scan_seconds=10,
        ca_unneeded_seconds=600,
        ca_delay_after_add_seconds=600,
        startup=StartupChain(node_ready=fixed(0), image_pull=fixed(0), model_load=fixed(0)),
        spot_rate_per_node_second=0.0,
        spot_notice_seconds=120,
        request_timeout_seconds=math.inf,
    )


def replay(measurement: Measurement, efficiency: Efficiency | None = None) -> float:
    """The benchmark's figure as the planner simulates it (same unit as ``measurement.value``)."""
    profile = measurement_profile(measurement, efficiency)
    simulation = _Replay(_setup(profile, measurement.instance_type), measurement)
    simulation.replay()
    first = np.frombuffer(simulation.first_token, dtype=np.float64)
    end = np.frombuffer(simulation.finished, dtype=np.float64)
    start = np.asarray(simulation.arrival, dtype=np.float64)  # a view on the replay's own arrivals
    if np.isnan(end).any():
        raise ProfileError(f"measurement {measurement.id}: the replay left requests unfinished")
    if measurement.metric == "tpot_p50_ms":
        return float(np.median((end - first) / (measurement.output_tokens - 1))) * 1000
    if measurement.metric == "ttft_p50_ms":
        return float(np.median(first - start)) * 1000
    return float(end.max())


def residual(measurement: Measurement, efficiency: Efficiency | None = None) -> float:
    """(simulated - measured) / measured: positive when the planner is slower than the benchmark."""
    return replay(measurement, efficiency) / measurement.value - 1


@dataclass(frozen=True)
class Fit:
    bandwidth: float
    step_overhead_seconds: float
    families: tuple[str, ...]
    squared_error: float

    def efficiency(self) -> Efficiency:
        return Efficiency(
            round(self.bandwidth, 3),
            PREFILL_MFU.value,
            round(self.step_overhead_seconds, 5),
            f"fitted (planner.calibration) to vLLM measurements on {', '.join(self.families)}",
        )


def _error(points: list[Measurement], bandwidth: float, overhead: float) -> float:
    trial = Efficiency(bandwidth, PREFILL_MFU.value, overhead, "trial")
    return sum(residual(m, trial) ** 2 for m in points)


def fit(measurements: list[Measurement]) -> Fit:
    """Least squares over the ``fit`` points: a grid, then two finer grids around the best cell.

    Bandwidth efficiency in [0.40, 1.00], step overhead in [0, 4 ms]; deterministic (no random start).
    """
    points = [m for m in measurements if m.role == "fit"]
    if len(points) < 2:
        raise ProfileError(f"calibration needs at least 2 measurements with role 'fit', found {len(points)}")
    lo_b, hi_b, lo_o, hi_o = 0.40, 1.00, 0.0, 0.004
    best = (math.inf, 0.0, 0.0)
    for _ in range(3):
        step_b, step_o = (hi_b - lo_b) / 10, (hi_o - lo_o) / 10
        for i in range(11):
            for j in range(11):
                bandwidth, overhead = lo_b + i * step_b, lo_o + j * step_o
                if bandwidth <= 0 or overhead < 0:
                    continue
                error = _error(points, bandwidth, overhead)
                if error < best[0]:
                    best = (error, bandwidth, overhead)
        _, b, o = best
        lo_b, hi_b = max(0.05, b - step_b), min(1.0, b + step_b)
        lo_o, hi_o = max(0.0, o - step_o), o + step_o
    families = tuple(sorted({m.gpu.split("-")[0] for m in points}))
    return Fit(best[1], best[2], families, best[0])


def calibrated_efficiencies(fitted: Fit) -> dict[str, Efficiency]:
    """What planner.profiles.CALIBRATED_EFFICIENCY must hold for this fit: its families, its values."""
    return {family: fitted.efficiency() for family in fitted.families}


def residual_table(
    measurements: list[Measurement], calibrated: dict[str, Efficiency]
) -> list[tuple[Measurement, float, float]]:
    """(measurement, residual with the estimates, residual with the calibrated efficiencies) per point.

    A family without a calibrated entry keeps the estimates in both columns (efficiency_for's rule).
    """
    rows = []
    for m in measurements:
        mine = calibrated.get(m.gpu.split("-")[0], ESTIMATED_EFFICIENCY)
        rows.append((m, residual(m, ESTIMATED_EFFICIENCY), residual(m, mine)))
    return rows
