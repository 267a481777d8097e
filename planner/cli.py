"""Command line: ``python -m planner --stage dev [--trace FILE] [--seed N] [--shape SPEC]``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from config import ConfigError, load_stages
from config.stage import StageConfig
from planner.clock import START_FORMATS, StartError, resolve_start
from planner.commitments import CommitmentRates, CommitmentRatesError, commitment_section, load_rates
from planner.cost import cost_table, monthly_estimate
from planner.gpu_slices import SharingError
from planner.plan import VersionPlan, expected_requests, plan_stage
from planner.policies import CONFIGURED
from planner.prices import PriceError
from planner.profiles import ProfileError
from planner.report import PlotPanel, plot, table
from planner.routing import RoutingError, parse_policies
from planner.routing_report import routing_section
from planner.schedule import ScheduleError
from planner.settings import PlannerSettings
from planner.sharing import sharing_section
from planner.trace import DEFAULT_TRACE, Trace, TraceError, in_zone, load_trace, restart, shape


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m planner",
        description="Replay a request trace against a stage's scaling rules and price it.",
    )
    parser.add_argument("--stage", required=True, help="stage name: a file config/<stage>.yaml")
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE, help="Azure or simple CSV trace")
    parser.add_argument("--seed", type=int, default=1, help="seed for shaping, traffic split and Spot")
    parser.add_argument("--shape", default="none", help="none | timescale:K | daily:DAYS | week (labelled)")
    parser.add_argument(
        "--start",
        help="replay from this time: "
        + START_FORMATS
        + ". Default: 10:00 local on the first weekday on or after the trace's date, in on-hours",
    )
    parser.add_argument("--model", action="append", help="only this model id (repeatable)")
    parser.add_argument(
        "--out", type=Path, default=Path("plan-output"), help="folder for report.md and plan.png"
    )
    parser.add_argument(
        "--spot-interruptions-per-node-hour",
        type=float,
        help="override the Spot interruption rate (stress test)",
    )
    parser.add_argument(
        "--spot-capacity-failure-probability",
        type=float,
        help="share of Spot launches that find no capacity (default 0); the autoscaler then falls back",
    )
    parser.add_argument(
        "--spot-rebalance-lead-minutes",
        type=float,
        help="EC2 rebalance recommendation this long before each Spot notice (default 0: with it); "
        "the stage's spot.rebalance_action then cordons or drains the node",
    )
    parser.add_argument(
        "--fixed-startup",
        action="store_true",
        help="every scale-up step at its median instead of seeded draws (planner/startup.py)",
    )
    parser.add_argument(
        "--routing-policies",
        help="compare replica selection under the configured autoscaling: all, or a comma-separated list "
        "of least_outstanding (the ALB: host and header routing), round_robin, power_of_two, least_request "
        "(the model gateway's Envoy: model routing), prefix_affinity",
    )
    parser.add_argument(
        "--prefix-cache-bound",
        choices=["free", "capacity"],
        default="free",
        help="with --routing-policies: each replica's prefix cache holds its free KV (default, a lower "
        "bound on hits) or its whole KV cache (an upper bound)",
    )
    parser.add_argument(
        "--gpu-sharing",
        help="add the scenario of the versions sharing GPUs: time-slicing:N (2..16 pods per GPU) or "
        "mig:PROFILE (e.g. mig:3g.40gb), against whole GPUs per version",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes planning model versions in parallel (default: the CPU count)",
    )
    parser.add_argument(
        "--no-fit-load",
        action="store_true",
        help="do not add the comparison at a load max_replicas can carry when the trace exceeds it",
    )
    return parser.parse_args(argv)


def load_inputs(args: argparse.Namespace) -> tuple[StageConfig, Trace]:
    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: must be 1 or more")
    stages = load_stages()
    if args.stage not in stages:
        raise ConfigError(
            f"--stage {args.stage!r}: no config/{args.stage}.yaml; allowed: {', '.join(sorted(stages))}"
        )
    stage = stages[args.stage]
    known = [model.id for model in stage.models]
    for wanted in args.model or []:
        if wanted not in known:
            raise ConfigError(
                f"--model {wanted!r} is not a model of stage {stage.name}; allowed: {', '.join(known)}"
            )
    recorded = load_trace(args.trace)
    start = resolve_start(args.start, recorded.start, stage.offhours)
    # Retime first, then shape: the daily curve's hours are the stage's local hours from the new start.
    trace = shape(in_zone(restart(recorded, start), stage.offhours.timezone), args.shape, args.seed)
    return stage, trace


def render(
    stage: StageConfig,
    trace: Trace,
    plans: list[VersionPlan],
    seed: int,
    wall: float,
    rates: CommitmentRates | None = None,
    sharing: str | None = None,
) -> str:
    rates = rates or load_rates()
    lines = [f"# Capacity plan: stage {stage.name}", "", f"Trace: {trace.describe()}. Seed {seed}."]
    lines += [f"\n**Trace warning:** {warning}" for warning in trace.warnings]
    shared = trace.shared_prefix_share()
    if shared is not None:
        lines.append(
            f"\nPrefix blocks already seen in an earlier request: {shared:.0%} (block hashes kept; the "
            "policy tables do not model prefix-cache hits, so prefill work is an upper bound there; "
            "the replica-selection tables of --routing-policies do)."
        )
    if trace.is_synthetic:
        lines.append("**SYNTHETIC traffic: the trace was shaped; figures are not a replay of real load.**")
    for plan in plans:
        lines += [
            "",
            f"## {plan.title}: TTFT SLO p95 <= {plan.model.slo.ttft_p95_seconds:g} s",
            "",
            f"Profile: {plan.profile.description}; KV cache {plan.profile.kv_capacity_tokens:,} tokens; "
            f"prefill {plan.profile.prefill_per_token_seconds * 1e3:.3f} ms/token; decode step "
            f"{plan.profile.step_seconds * 1e3:.1f} ms + "
            f"{plan.profile.per_sequence_seconds * 1e3:.3f} ms/sequence; "
            f"cold start {plan.cold_start_seconds:.0f} s. Static peak: {plan.static_replicas} replica(s); "
            f"oracle sized at {plan.oracle_utilisation:.0%} utilisation.",
            "",
            table(plan.summaries, plan.model.slo.ttft_p95_seconds),
        ]
        lines += [f"\nNote: {note}" for note in plan.notes]
        if plan.routing is not None:
            lines += [
                "",
                f"### Replica selection: {plan.title}",
                "",
                routing_section(plan.routing, plan.model.slo.ttft_p95_seconds),
            ]
        section, _ = commitment_section(results=plan.results, sized_on=CONFIGURED, rates=rates)
        lines += ["", f"### Savings Plan commitment: {plan.title}", "", section]
    if sharing is not None:
        lines += ["", "## GPU sharing between models (scenario)", "", sharing]
    lines += [
        "",
        "## Monthly cost estimate (configured policy)",
        "",
        cost_table(monthly_estimate(stage, plans, trace)),
    ]
    lines += ["", f"Simulated in {wall:.1f} s wall time."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = PlannerSettings()
    if args.spot_capacity_failure_probability is not None:
        if not 0 <= args.spot_capacity_failure_probability <= 1:
            print(
                f"planner: --spot-capacity-failure-probability {args.spot_capacity_failure_probability}: "
                "must be between 0 and 1",
                file=sys.stderr,
            )
            return 2
        settings = replace(settings, spot_capacity_failure_probability=args.spot_capacity_failure_probability)
    if args.routing_policies is not None:
        try:
            settings = replace(
                settings,
                routing_policies=parse_policies(args.routing_policies),
                prefix_cache_bound=args.prefix_cache_bound,
            )
        except RoutingError as error:
            print(f"planner: {error}", file=sys.stderr)
            return 2
    if args.spot_interruptions_per_node_hour is not None:
        settings = replace(settings, spot_interruptions_per_node_hour=args.spot_interruptions_per_node_hour)
    if args.spot_rebalance_lead_minutes is not None:
        if not 0 <= args.spot_rebalance_lead_minutes <= 24 * 60:
            print(
                f"planner: --spot-rebalance-lead-minutes {args.spot_rebalance_lead_minutes}: "
                "must be between 0 and 1440",
                file=sys.stderr,
            )
            return 2
        settings = replace(settings, spot_rebalance_lead_seconds=args.spot_rebalance_lead_minutes * 60)
    if args.fixed_startup:
        settings = replace(settings, startup_spread=False)
    try:
        rates = load_rates()
        stage, trace = load_inputs(args)
        for warning in trace.warnings:
            print(f"planner: warning: {warning}", file=sys.stderr)
        # Analytic and cheap: computed first so a scenario that cannot be planned stops the run early.
        sharing = (
            None
            if args.gpu_sharing is None
            else sharing_section(
                stage,
                trace,
                args.gpu_sharing,
                model_ids=args.model,
                utilisation=settings.sharing_utilisation,
                window_seconds=settings.oracle_window_seconds,
                seed=args.seed,
            )
        )
        started = time.perf_counter()
        with tqdm(
            total=expected_requests(stage, trace, settings, args.model, args.seed, not args.no_fit_load),
            unit="req",
            unit_scale=True,
            disable=args.no_progress,
            desc=f"plan {stage.name}",
        ) as bar:
            # Lean results: the report and plot read only figures reduced where each run happens.
            plans = plan_stage(
                stage,
                trace,
                settings,
                args.seed,
                args.model,
                bar.update,
                not args.no_fit_load,
                args.workers,
                lean=True,
            )
            bar.total = bar.n
            bar.refresh()
        wall = time.perf_counter() - started
    except (
        ConfigError,
        TraceError,
        ProfileError,
        PriceError,
        ScheduleError,
        StartError,
        CommitmentRatesError,
        SharingError,
    ) as error:
        print(f"planner: {error}", file=sys.stderr)
        return 2
    if not plans:
        print(f"planner: stage {stage.name} has no model to plan", file=sys.stderr)
        return 2
    out = args.out / stage.name
    out.mkdir(parents=True, exist_ok=True)
    report = render(stage, trace, plans, args.seed, wall, rates, sharing)
    panels = [
        PlotPanel(
            f"{plan.title} (SLO {plan.model.slo.ttft_p95_seconds:g} s)",
            plan.trace,
            plan.model.slo.ttft_p95_seconds,
            plan.results,
            plan.offhours,
        )
        for plan in plans
    ]
    synthetic = " - SYNTHETIC (shaped) traffic" if trace.is_synthetic else ""
    plot(
        panels,
        out / "plan.png",
        f"stage {stage.name}: {trace.describe()}{synthetic}",
        settings.plot_bin_seconds,
    )
    (out / "report.md").write_text(report + f"\n\nPlot: {out / 'plan.png'}\n", encoding="utf-8")
    print(report)
    print(f"\nReport: {out / 'report.md'}\nPlot: {out / 'plan.png'}")
    return 0
