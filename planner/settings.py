"""Planner settings that the stage configuration does not (yet) carry, each with its default's basis.

These are planning assumptions, not deployment settings; the CLI can override the common ones.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlannerSettings:
    # Kubernetes HPA default tolerance (kube-controller-manager --horizontal-pod-autoscaler-tolerance).
    hpa_tolerance: float = 0.1
    # Delay from a scrape to the value the HPA reads: AMP ingestion + adapter query (estimate, seconds).
    metric_lag_seconds: float = 15.0
    # Target for the "HPA on GPU utilisation" policy: DCGM_FI_DEV_GPU_UTIL averaged per pod (a common
    # choice in GPU autoscaling examples; an assumption, not a recommendation).
    gpu_utilisation_target: float = 0.7
    # Cold start after the node is Ready: image pull of vllm/vllm-openai (~10 GB compressed layers at an
    # estimated 150 MB/s from ECR) and engine warm-up (CUDA graph capture, profiling); estimates.
    image_pull_seconds: float = 70.0
    engine_warmup_seconds: float = 45.0
    # Weights streamed from S3 into GPU memory (estimate: 1 GiB/s per pod with a streaming loader).
    weights_load_gib_per_second: float = 1.0
    # Spot interruption rate per node-hour: 10 % a month (the Spot Instance Advisor's 5-10 % band,
    # upper edge) / 730 h. An estimate; the advisor publishes bands per type and region.
    spot_interruptions_per_node_hour: float = 0.10 / 730
    # Share of Spot node launches that find no capacity. AWS publishes no such rate (the Spot placement
    # score is relative), so the default is 0; set it to stress-test the fallback to on-demand groups.
    spot_capacity_failure_probability: float = 0.0
    # From the failed launch to the Cluster Autoscaler seeing the ASG's unfulfillable placeholder
    # (cloudprovider/aws placeholderUnfulfillableStatus): one ASG refresh, estimate.
    spot_failure_detect_seconds: float = 60.0
    # cluster-autoscaler --initial-node-group-backoff-duration default (config/flags/flags.go, 1.36.0).
    ca_backoff_seconds: float = 300.0
    # EC2 Spot two-minute interruption notice (EC2 User Guide, "Spot Instance interruption notices").
    spot_notice_seconds: float = 120.0
    # A client gives up after this long without a first token (assumption).
    request_timeout_seconds: float = 600.0
    # ALB routing: least outstanding requests, set on every model target group by
    # k8s_charts/model_ingress.py (load_balancing.algorithm.type, tested in test_model_ingress.py).
    # Oracle and static sizing: replica utilisations tried, most aggressive first.
    oracle_utilisations: tuple[float, ...] = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
    # Oracle planning window (seconds): capacity is sized per window from the future arrivals.
    oracle_window_seconds: float = 60.0
    # The trace's first minutes are replayed once before the measured window, every HPA policy starting
    # from one common replica count (the warm-up's work at start_utilisation), so each reaches its own
    # steady state before measurement; excluded from all figures and costs. 45 minutes: with 15, the
    # GPU-utilisation HPA was still climbing when measured (issue 20). Whether each policy settled is
    # reported.
    warmup_seconds: float = 2700.0
    start_utilisation: float = 0.7
    # A desired count unchanged for this long before the measured window counts as settled.
    settled_seconds: float = 600.0
    # Cluster Autoscaler: no scale-up while the oldest unschedulable GPU pod is younger than this
    # (unschedulablePodWithGpuTimeBuffer = 30 s, core/static_autoscaler.go, cluster-autoscaler-1.36.0).
    ca_gpu_pod_buffer_seconds: float = 30.0
    # kube-controller-manager --horizontal-pod-autoscaler-sync-period (default 15 s).
    hpa_sync_seconds: float = 15.0
    # Share of offered requests that must get a first token within the SLO (the SLO is a p95).
    slo_quantile: float = 0.95
    # When the trace needs more than max_replicas, the extra comparison runs the trace slowed down so
    # its busiest window keeps max_replicas at this utilisation (headroom for queueing; a planning choice).
    fit_load_utilisation: float = 0.6
    # Width of the time bins in the plot and the per-bin TTFT p95 (seconds); 0 = automatic.
    plot_bin_seconds: float = 0.0
    # Replica-selection policies compared under the configured autoscaling (--routing-policies;
    # planner.routing). Empty: no comparison, and every run routes as the ALB does.
    routing_policies: tuple[str, ...] = ()
    # What bounds each replica's prefix cache there (--prefix-cache-bound; planner.prefix_cache):
    # "free" (its free KV: a lower bound on hits) or "capacity" (its whole KV cache: an upper bound).
    prefix_cache_bound: str = "free"
    # --gpu-sharing scenario (planner.sharing): each version's work per oracle window is sized at this
    # utilisation, as the warm-up's starting count is (a planning choice).
    sharing_utilisation: float = 0.7
