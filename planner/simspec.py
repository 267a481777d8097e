"""What one simulation is given (node groups, autoscaling, timings) and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from planner.hpa import HpaSpec
from planner.profiles import ReplicaProfile
from planner.routing import RoutingSpec
from planner.startup import StartupChain


@dataclass(frozen=True)
class GroupSpec:
    name: str
    instance_type: str
    spot: bool
    gpus_per_node: int
    replicas_per_node: int
    min_size: int
    max_size: int
    hourly_price: float
    in_offhours: bool


@dataclass(frozen=True)
class Autoscaling:
    """How the replica count is decided: an HPA metric, a fixed count, or an oracle schedule."""

    kind: str  # "hpa", "static" or "oracle"
    hpa: HpaSpec | None = None
    queue_target: float | None = None  # vllm:num_requests_waiting per replica (external AverageValue)
    kv_target: float | None = None  # vllm:kv_cache_usage_perc per pod (Pods AverageValue)
    gpu_target: float | None = None  # DCGM_FI_DEV_GPU_UTIL per pod (Pods AverageValue)
    # KEDA's pollingInterval only drives activation (0 <-> 1); the HPA syncs on its own period
    # (kube-controller-manager --horizontal-pod-autoscaler-sync-period, default 15 s) and KEDA's
    # metrics server queries Prometheus on each HPA request.
    polling_seconds: float = 15.0
    hpa_sync_seconds: float = 15.0
    tolerance: float = 0.1
    static_replicas: int = 0
    oracle_schedule: tuple[tuple[float, int], ...] = ()


@dataclass(frozen=True)
class SimSetup:
    profile: ReplicaProfile
    groups: tuple[GroupSpec, ...]  # in Cluster Autoscaler priority order (Spot first)
    autoscaling: Autoscaling
    horizon_seconds: float
    scrape_seconds: float
    metric_lag_seconds: float
    ca_scan_seconds: float
    ca_unneeded_seconds: float
    ca_delay_after_add_seconds: float
    # Launch -> node Ready -> GPUs -> image -> /health -> probes -> ALB healthy (planner/startup.py).
    startup: StartupChain
    spot_rate_per_node_second: float
    spot_notice_seconds: float
    request_timeout_seconds: float
    # The Cluster Autoscaler waits until the oldest unschedulable GPU pod is this old before scaling up
    # (unschedulablePodWithGpuTimeBuffer in core/static_autoscaler.go, 30 s in 1.36.0).
    ca_new_pod_buffer_seconds: float = 0.0
    # Spot launches that find no capacity: probability per launch, time until the Cluster Autoscaler
    # sees the failed placeholder, and its node-group backoff (--initial-node-group-backoff-duration).
    spot_capacity_failure_probability: float = 0.0
    spot_failure_detect_seconds: float = 60.0
    ca_backoff_seconds: float = 300.0
    # Cluster Autoscaler scale-ups elsewhere in the cluster (the stage's other model versions), in this
    # run's clock: lastScaleUpTime is one value for the whole cluster, so each of them also holds off
    # scale-down for scale-down-delay-after-add (isScaleDownInCooldown, core/static_autoscaler.go,
    # cluster-autoscaler-1.36.0; --scale-down-delay-type-local defaults to false and is not set).
    cluster_scale_ups: tuple[float, ...] = ()
    # EC2 rebalance recommendation this long before each Spot interruption notice (0: it arrives with
    # the notice, the case the EC2 docs say can happen) and what lambdas/spot_interruption does with it
    # (the stage's spot.rebalance_action: ignore, cordon or drain).
    spot_rebalance_lead_seconds: float = 0.0
    spot_rebalance_action: str = "cordon"
    # A deleted pod serves what it holds for this long (the chart's pre-stop deadline, 15 s +
    # max_request_seconds, k8s_charts/shutdown.py); what is left then is dropped.
    termination_grace_seconds: float = 120.0
    # (seconds from start, off_hours) switch points; the first is at 0.
    offhours: tuple[tuple[float, bool], ...] = ((0.0, False),)
    offhours_floor_replicas: int = 0
    offhours_floor_nodes: int = 0
    # The replica count every HPA policy starts from (clamped to its bounds): one common steady start.
    initial_replicas: int | None = None
    seed: int = 0
    # Costs and the time series count from here (the warm-up before it is not measured).
    measure_from_seconds: float = 0.0
    # Replica selection and prefix caches (planner.routing); None: the ALB's least outstanding
    # requests, no prefix cache (the default path, unchanged).
    routing: RoutingSpec | None = None

    @property
    def cold_start_seconds(self) -> float:
        return self.startup.expected_cold_start_seconds


@dataclass(frozen=True)
class TtftBins:
    """TTFT p95 of the requests arriving in each plot bin of ``width`` seconds (bin centres, values)."""

    width: float
    centres: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class RequestFigures:
    """A run's per-request columns reduced to what the report, plots and notes read (planner/lean.py).

    A lean result carries these instead of the columns: a 27M-request run's columns are ~0.7 GB, these
    a few kilobytes. Every figure is computed by the same code in both modes, so they are bit-identical.
    """

    offered: int
    slo_seconds: float
    served: int
    outcome_counts: tuple[int, ...]  # requests per Outcome code (index = code)
    ttft_p50: float
    ttft_p95: float
    ttft_p99: float
    queue_wait_p95: float
    within_slo: int  # requests with a first token at most slo_seconds after arrival
    served_output_tokens: int
    # sha256 of the first-token column (NaN as -1, -0.0 as 0.0): equal columns, equal keys (report.same_as).
    first_token_key: str
    prefix_hit_rate: float | None = None  # None: prefix cache not modelled
    ttft_bins: TtftBins | None = None  # the plot's series (None: not reduced for a plot)


@dataclass
class SimResult:
    first_token: np.ndarray
    admitted: np.ndarray
    finished: np.ndarray
    outcome: np.ndarray
    series_time: np.ndarray
    series_desired: np.ndarray
    series_ready: np.ndarray
    node_seconds: dict[str, float]
    gpu_seconds: float
    dollars: float
    node_launches: int
    spot_interruptions: int
    events: int = 0
    spot_capacity_failures: int = 0
    # On-demand node-hours in each hour of the measured window, per instance type, and each hour's
    # length in hours (the last may be partial): the curve a Savings Plan commitment is sized on.
    on_demand_instance_hours: dict[str, np.ndarray] = field(default_factory=dict)
    hour_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # Seconds from the last change of the desired replica count in the warm-up to its end (None:
    # no change in the warm-up; small values mean the controllers were still moving when measured).
    warmup_settled_seconds: float | None = None
    # When the Cluster Autoscaler scaled up one of this run's node groups (the run's own clock).
    scale_up_times: tuple[float, ...] = ()
    # Requests preempted when a replica's KV cache was full (vLLM recomputes them), warm-up included.
    preemptions: int = 0
    notes: list[str] = field(default_factory=list)
    # Prompt tokens each request found in its replica's prefix cache (None: prefix cache not modelled).
    cached_tokens: np.ndarray | None = None
    # Set on a lean result (planner/lean.py): the per-request columns above are then empty and every
    # figure read from them comes from here.
    figures: RequestFigures | None = None

    @property
    def lean(self) -> bool:
        return self.figures is not None
