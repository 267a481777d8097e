"""Regenerate the figures in planner/README.md: ``make plan-figures`` (``python -m planner.figures``).

Plans every shipped stage on the bundled trace with seed 1 from the default start and rewrites the
block between the README's ``figures`` markers with each version's policy ranking, so the README
never shows figures the code no longer produces.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from config import load_stages
from config.stages import STAGE_ORDER
from planner.clock import resolve_start
from planner.plan import VersionPlan, plan_stage
from planner.settings import PlannerSettings
from planner.trace import DEFAULT_TRACE, in_zone, load_trace, restart

README = Path(__file__).resolve().parent / "README.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"


def ranking(plan: VersionPlan) -> list[str]:
    """Policies best first: share under the SLO, then cost (GPU-hours)."""
    rows = sorted(plan.summaries, key=lambda s: (-round(s.slo_attainment, 3), s.gpu_hours))
    lines = [
        f"**{plan.title}** (SLO p95 <= {plan.model.slo.ttft_p95_seconds:g} s)",
        "",
        "| rank | policy | under SLO | TTFT p95 s | GPU-h | $ |",
        "|---|---|---|---|---|---|",
    ]
    for rank, s in enumerate(rows, start=1):
        lines.append(
            f"| {rank} | {s.name} | {s.slo_attainment:.1%} | {s.ttft_p95:.2f} | "
            f"{s.gpu_hours:.1f} | {s.dollars:.2f} |"
        )
    lines += [f"\n{note}" for note in plan.notes if note.startswith(("CAPACITY", "VACUOUS"))]
    return lines


def render(workers: int) -> str:
    stages = load_stages()
    recorded = load_trace(DEFAULT_TRACE)
    lines = [START, ""]
    for name in STAGE_ORDER:
        stage = stages[name]
        trace = in_zone(
            restart(recorded, resolve_start(None, recorded.start, stage.offhours)), stage.offhours.timezone
        )
        started = time.perf_counter()
        plans = plan_stage(stage, trace, PlannerSettings(), seed=1, workers=workers, lean=True)
        lines += [
            f"### {name}",
            "",
            f"{trace.describe()}; planned in {time.perf_counter() - started:.0f} s.",
            "",
        ]
        for plan in plans:
            lines += [*ranking(plan), ""]
    lines.append(END)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m planner.figures")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    if START not in text or END not in text:
        print(f"planner.figures: {README} has no {START} ... {END} block", file=sys.stderr)
        return 2
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    README.write_text(head + render(args.workers) + tail, encoding="utf-8")
    print(f"rewrote the figures in {README}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
