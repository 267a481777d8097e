"""Monthly cost estimate of a stage: GPU nodes from the simulation, the rest from the configuration."""

from __future__ import annotations

from dataclasses import dataclass

from config.stage import StageConfig
from planner.plan import VersionPlan
from planner.policies import CONFIGURED, CONFIGURED_NO_OFFHOURS
from planner.prices import FIXED, FIXED_SOURCE, PRICE_REGION, PRICES_AS_OF, SPOT_SOURCE, hourly_price
from planner.schedule import off_hours_share
from planner.trace import Trace

# Metric series per scrape target: estimates from typical exporters (node-exporter ~700, kubelet and
# cAdvisor ~400, DCGM ~50 per GPU; vLLM's histograms ~400 per pod; control-plane and
# kube-state-metrics ~3,000 per cluster). AMP bills per ingested sample.
SERIES_PER_NODE = 1100
SERIES_PER_GPU = 50
SERIES_PER_VLLM_POD = 400
SERIES_PER_CLUSTER = 3000
# An ALB LCU is 25 new connections/s or 1 GB/h processed (the larger dimension bills); a chat request
# carries ~4 bytes per prompt and output token in JSON (estimate).
BYTES_PER_TOKEN = 4.0


@dataclass(frozen=True)
class CostLine:
    item: str
    monthly_dollars: float
    basis: str


def monthly_estimate(stage: StageConfig, plans: list[VersionPlan], trace: Trace) -> list[CostLine]:
    plans = [plan for plan in plans if plan.load_factor is None]  # the recorded load only
    hours = FIXED.hours_per_month
    lines = [*_gpu_lines(stage, plans, trace)]
    used_groups = {name for plan in plans for name in plan.version.node_groups}
    for group in stage.cluster.gpu_node_groups:
        if group.name not in used_groups and group.min_size:
            price = hourly_price(group.instance_types[0], group.capacity_type.value == "spot")
            lines.append(
                CostLine(f"GPU group {group.name} (no model)", group.min_size * price * hours, "min_size")
            )
    system = stage.cluster.system_node_group
    lines.append(
        CostLine(
            "system nodes",
            system.min_size * hourly_price(system.instance_types[0], spot=False) * hours,
            f"{system.min_size} x {system.instance_types[0]} on-demand",
        )
    )
    lines.append(CostLine("EKS control plane", FIXED.eks_cluster_hourly * hours, "standard support"))
    lines.append(
        CostLine(
            "NAT gateways",
            stage.network.nat_gateways * FIXED.nat_gateway_hourly * hours,
            f"{stage.network.nat_gateways} x hourly; data processing not included "
            "(image pulls via VPC endpoints)",
        )
    )
    lines.append(_alb_line(trace))
    lines.append(_amp_line(stage, plans))
    return lines


def _gpu_lines(stage: StageConfig, plans: list[VersionPlan], trace: Trace) -> list[CostLine]:
    hours = FIXED.hours_per_month
    measured_hours = trace.duration_seconds / 3600
    share_off = off_hours_share(stage.offhours, trace.start) if stage.offhours.enabled else 0.0
    lines = []
    for plan in plans:
        by_name = {summary.name: summary for summary in plan.summaries}
        if measured_hours >= 24 * 7:
            monthly = by_name[CONFIGURED].dollars / measured_hours * hours
            basis = f"configured policy over {measured_hours:.0f} h of trace, scaled to {hours:.0f} h"
        else:
            busy = by_name.get(CONFIGURED_NO_OFFHOURS, by_name[CONFIGURED])
            on_rate = busy.dollars / measured_hours
            off_rate = _floor_rate(stage, plan) if plan.model in stage.offhours_models else on_rate
            monthly = hours * ((1 - share_off) * on_rate + share_off * off_rate)
            basis = (
                f"trace's load all on-hours ({1 - share_off:.0%} of the month) at ${on_rate:.2f}/h, "
                f"off-hours floor at ${off_rate:.2f}/h (estimate: a busy-hour trace taken as typical)"
            )
        lines.append(CostLine(f"GPU nodes {plan.title}", monthly, basis))
    return lines


def _floor_rate(stage: StageConfig, plan: VersionPlan) -> float:
    """Hourly GPU cost at night: the groups' night floors, plus nodes for replicas that do not fit."""
    offhours_groups = {group.name for group in stage.offhours_node_groups}
    groups = [stage.cluster.gpu_node_group(name) for name in plan.version.node_groups]
    rate = 0.0
    replicas_left = stage.offhours.floor_replicas
    for group in groups:
        assert group is not None
        nodes = (
            min(stage.offhours.floor_nodes, group.min_size)
            if group.name in offhours_groups
            else group.min_size
        )
        replicas_left -= nodes * max(1, group.gpus_per_node // plan.version.gpus_per_replica)
        rate += nodes * hourly_price(group.instance_types[0], group.capacity_type.value == "spot")
    if replicas_left > 0 and groups[0] is not None:
        first = groups[0]
        per_node = max(1, first.gpus_per_node // plan.version.gpus_per_replica)
        extra = -(-replicas_left // per_node)
        rate += extra * hourly_price(first.instance_types[0], first.capacity_type.value == "spot")
    return rate


def _alb_line(trace: Trace) -> CostLine:
    seconds = trace.duration_seconds
    requests_per_second = trace.size / seconds
    gb_per_hour = (
        float((trace.prompt_tokens.sum() + trace.output_tokens.sum()) * BYTES_PER_TOKEN)
        / 1e9
        / (seconds / 3600)
    )
    lcus = max(requests_per_second / 25, gb_per_hour)
    monthly = (FIXED.alb_hourly + lcus * FIXED.alb_lcu_hourly) * FIXED.hours_per_month
    return CostLine(
        "application load balancer", monthly, f"~{lcus:.2f} LCU at the trace's mean rate (estimate)"
    )


def _amp_line(stage: StageConfig, plans: list[VersionPlan]) -> CostLine:
    gpu_nodes = sum(
        summary.gpu_hours / max(1, _gpus_per_node(stage, plan)) / (plan.trace.duration_seconds / 3600)
        for plan in plans
        for summary in plan.summaries
        if summary.name == CONFIGURED
    )
    gpus = sum(
        summary.gpu_hours / (plan.trace.duration_seconds / 3600)
        for plan in plans
        for summary in plan.summaries
        if summary.name == CONFIGURED
    )
    pods = gpus  # one vLLM pod per GPU or per tensor-parallel group: an upper estimate
    nodes = gpu_nodes + stage.cluster.system_node_group.min_size
    series = SERIES_PER_CLUSTER + nodes * SERIES_PER_NODE + gpus * SERIES_PER_GPU + pods * SERIES_PER_VLLM_POD
    samples = series * FIXED.hours_per_month * 3600 / stage.observability.scrape_interval_seconds
    monthly = samples / 1e7 * FIXED.amp_per_10m_samples
    return CostLine(
        "Amazon Managed Prometheus",
        monthly,
        f"~{series:,.0f} series every {stage.observability.scrape_interval_seconds} s "
        "(series counts estimated)",
    )


def _gpus_per_node(stage: StageConfig, plan: VersionPlan) -> int:
    group = stage.cluster.gpu_node_group(plan.version.node_groups[0])
    return group.gpus_per_node if group else 1


def cost_table(lines: list[CostLine]) -> str:
    total = sum(line.monthly_dollars for line in lines)
    rows = ["| item | $/month | basis |", "|---|---|---|"]
    rows += [f"| {line.item} | {line.monthly_dollars:,.0f} | {line.basis} |" for line in lines]
    rows.append(f"| **total** | **{total:,.0f}** | |")
    rows.append("")
    rows.append(f"Prices: {PRICE_REGION}, as of {PRICES_AS_OF}. {FIXED_SOURCE}. Spot: {SPOT_SOURCE}.")
    return "\n".join(rows)
