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
    # The scale-up chain (planner/startup.py), each stage a median and a 90th percentile, drawn per node
    # or pod from the run's seeded stream; False: every stage at its median (deterministic).
    startup_spread: bool = True
    # Launch -> node Ready: median = the stage's cluster_autoscaler.node_provision_minutes; p90 = 1.5 x
    # median (estimate). Published timings: c5 nodes register 39-40 s after launch
    # (awslabs/amazon-eks-ami#1099, aws/karpenter-provider-aws#3102), ~70-80 s to registration
    # (karpenter-provider-aws#6128), 2 min 25 s to take pods (amazon-eks-ami#417), and "GPU instance
    # types often take much longer to boot within EC2" (amazon-eks-ami#1099, a maintainer).
    node_ready_p90_ratio: float = 1.5
    # Node Ready -> nvidia.com/gpu allocatable: the device-plugin DaemonSet pod starts on the new node,
    # registers with the kubelet, and the kubelet reports the capacity in its next node status update
    # (nodeStatusUpdateFrequency, 10 s by default). Median and p90 are estimates.
    device_plugin_seconds: float = 20.0
    device_plugin_p90_seconds: float = 40.0
    # Image pull = download + unpack of vllm/vllm-openai, once per node. Size: 12.6 GB (vLLM's forum
    # figure quoted in vllm-project/vllm#27154, 2025; the unpacked image was 28.6 GB in
    # vllm-project/vllm#22377); the pinned tag's own size is not verified here (no registry access).
    # Rate: "Standard Docker image pulls of 15-20 GB can take 4-6 minutes per instance" (AWS Machine
    # Learning Blog, "Reducing container cold start times using SOCI index on DLAMI and DLC", 2026),
    # i.e. 12-24 s per GB: median 18, p90 24.
    vllm_image_gb: float = 12.6
    image_pull_seconds_per_gb: float = 18.0
    image_pull_p90_seconds_per_gb: float = 24.0
    # Engine warm-up (CUDA graph capture, profiling) after the weights are in: estimate.
    engine_warmup_seconds: float = 45.0
    # Weights streamed from S3 into GPU memory (estimate: 1 GiB/s per pod with a streaming loader).
    weights_load_gib_per_second: float = 1.0
    # Spread of weights + warm-up: p90 = 1.3 x median (estimate).
    model_load_p90_ratio: float = 1.3
    # The ALB target group's health check: the ingress (k8s_charts/model_ingress.py) sets neither the
    # interval nor the healthy threshold, so the AWS Load Balancer Controller's defaults apply:
    # 15 s and 2 (pkg/ingress/model_builder.go and docs/guide/ingress/annotations.md at v2.8.2, the
    # pinned controller).
    alb_healthcheck_interval_seconds: float = 15.0
    alb_healthy_threshold: int = 2
    # Spot interruption rate per node-hour: 10 % a month (the Spot Instance Advisor's 5-10 % band,
    # upper edge) / 730 h. An estimate; the advisor publishes bands per type and region.
    spot_interruptions_per_node_hour: float = 0.10 / 730
    # Share of Spot node launches that find no capacity. AWS publishes no such rate (the Spot placement
    # score is relative), so the default is 0; set it to stress-test the fallback to on-demand groups.
    spot_capacity_failure_probability: float = 0.0
    # EC2 rebalance recommendation lead before the two-minute notice. "The signal can arrive sooner than
    # the two-minute Spot Instance interruption notice" but "can arrive along with" it (EC2 User Guide,
    # "EC2 instance rebalance recommendations"); AWS publishes no lead-time distribution, so the default
    # is the documented lower bound, 0 (the recommendation adds nothing to the notice). Set it to see
    # what the stage's spot.rebalance_action (lambdas/spot_interruption) does with an early signal.
    spot_rebalance_lead_seconds: float = 0.0
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
