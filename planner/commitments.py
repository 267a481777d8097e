"""Savings Plan commitment for the on-demand GPU base load: the $/hour that minimises total cost.

A commitment of C $/h (at the plan's discounted rate) covers on-demand usage worth up to
C / (1 - discount) $/h each hour; usage above that pays On-Demand, and an unused commitment is still
paid. Spot usage is never covered (Savings Plans do not apply to Spot).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from planner.prices import ON_DEMAND_HOURLY
from planner.simspec import SimResult

RATES_FILE = Path(__file__).resolve().parent.parent / "data" / "commitment_rates.yaml"


class PlanRates(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    estimate: bool
    discount_by_family: dict[str, float] = Field(min_length=1)


class CommitmentRates(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    as_of: str
    region: str
    term: str
    source: str
    verified_maximum: dict[str, float]
    plans: dict[str, PlanRates]


class CommitmentRatesError(ValueError):
    """The rates file is missing, malformed or holds a discount outside [0, the verified maximum)."""


def load_rates(path: Path = RATES_FILE) -> CommitmentRates:
    try:
        rates = CommitmentRates.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise CommitmentRatesError(f"{path}: {error}") from None
    for plan, plan_rates in rates.plans.items():
        ceiling = rates.verified_maximum.get(plan)
        if ceiling is None:
            raise CommitmentRatesError(
                f"{path}: plans.{plan}: no verified_maximum.{plan} to check it against"
            )
        for family, discount in plan_rates.discount_by_family.items():
            if not 0 <= discount < min(ceiling, 1.0) + 1e-12:
                raise CommitmentRatesError(
                    f"{path}: plans.{plan}.discount_by_family.{family}: {discount} is not in "
                    f"[0, {ceiling}] (the plan's verified maximum)"
                )
    return rates


def family(instance_type: str) -> str:
    return instance_type.split(".", 1)[0]


def plan_discount(rates: CommitmentRates, plan: str, instance_types: set[str]) -> float | None:
    """The plan's discount on a mix of types: the smallest (conservative); None if a family is unlisted.

    An EC2 Instance Savings Plan covers one family, so it only applies when the mix is one family.
    """
    table = rates.plans[plan].discount_by_family
    families = {family(name) for name in instance_types}
    if not families or not families <= table.keys():
        return None
    if plan == "ec2_instance_savings_plan" and len(families) > 1:
        return None
    return min(table[name] for name in families)


def on_demand_dollars_per_hour(instance_hours: dict[str, np.ndarray]) -> np.ndarray:
    """On-demand $ per hour bin from instance-hours per hour bin per instance type."""
    if not instance_hours:
        return np.zeros(0)
    return sum(
        (hours * ON_DEMAND_HOURLY[name] for name, hours in instance_hours.items()),
        start=np.zeros_like(next(iter(instance_hours.values()))),
    )


def break_even_utilisation(discount: float) -> float:
    """Share of the commitment that must be used for it to cost no more than On-Demand.

    Committing C $/h buys C / (1 - d) $/h of On-Demand usage; using a share u of it would have cost
    u * C / (1 - d) On-Demand, which equals C at u = 1 - d.
    """
    return 1.0 - discount


def total_cost(usage: np.ndarray, hours: np.ndarray, commitment: float, discount: float) -> float:
    """Dollars over the curve: the commitment every hour plus on-demand usage above what it covers."""
    covered = commitment / (1.0 - discount)
    return float(np.sum(hours * (commitment + np.maximum(usage - covered, 0.0))))


def optimal_commitment(usage: np.ndarray, hours: np.ndarray, discount: float) -> float:
    """The commitment ($/h at the discounted rate) with the least total cost; the smallest on ties.

    Total cost is convex and piecewise linear in the covered usage k: raising k costs (1 - d) x all
    hours and saves 1 x the hours whose usage is above k. So the optimum is the smallest k (0 or one
    of the hourly usages) where the hours above k are at most a share (1 - d) of all hours.
    """
    if usage.size == 0 or discount <= 0:
        return 0.0
    order = np.argsort(usage, kind="stable")
    sorted_usage, sorted_hours = usage[order], hours[order]
    total = float(sorted_hours.sum())
    allowed_above = (1.0 - discount) * total
    # Weight strictly above each distinct usage level (ties share one level).
    above = total - np.cumsum(sorted_hours)
    last_of_level = np.append(sorted_usage[1:] != sorted_usage[:-1], True)
    candidates = [(0.0, float(sorted_hours[sorted_usage > 0].sum()))]
    levels = zip(sorted_usage[last_of_level], above[last_of_level], strict=True)
    candidates += [(float(level), float(weight)) for level, weight in levels]
    for level, weight_above in candidates:
        if weight_above <= allowed_above + 1e-9 * total:
            return level * (1.0 - discount)
    return float(sorted_usage[-1]) * (1.0 - discount)


@dataclass(frozen=True)
class Recommendation:
    plan: str
    discount: float
    commitment_hourly: float
    cost_without: float
    cost_with: float
    utilisation: float  # share of the commitment used over the curve
    estimate: bool

    @property
    def saving(self) -> float:
        return self.cost_without - self.cost_with

    @property
    def break_even_utilisation(self) -> float:
        return break_even_utilisation(self.discount)


def recommend(
    *, plan: str, discount: float, usage: np.ndarray, hours: np.ndarray, estimate: bool
) -> Recommendation:
    commitment = optimal_commitment(usage, hours, discount)
    covered = commitment / (1.0 - discount)
    used = float(np.sum(hours * np.minimum(usage, covered)))
    return Recommendation(
        plan=plan,
        discount=discount,
        commitment_hourly=commitment,
        cost_without=float(np.sum(hours * usage)),
        cost_with=total_cost(usage, hours, commitment, discount),
        utilisation=used / (covered * float(hours.sum())) if covered > 0 else 0.0,
        estimate=estimate,
    )


def usage_curve(result: SimResult) -> tuple[np.ndarray, np.ndarray, set[str]]:
    """On-demand $/h in each hour of the measured window, each hour's length, and the types used."""
    hours = result.hour_lengths
    spent = on_demand_dollars_per_hour(result.on_demand_instance_hours)
    if spent.size == 0:
        spent = np.zeros_like(hours)
    rate = np.divide(spent, hours, out=np.zeros_like(spent), where=hours > 0)
    used = {name for name, series in result.on_demand_instance_hours.items() if series.sum() > 0}
    return rate, hours, used


def priced_with(result: SimResult, commitment: float, discount: float) -> float:
    """The run's GPU dollars with the commitment: Spot unchanged, on-demand through the commitment."""
    usage, hours, _ = usage_curve(result)
    return result.dollars - float(np.sum(usage * hours)) + total_cost(usage, hours, commitment, discount)


def commitment_section(
    *, results: dict[str, SimResult], sized_on: str, rates: CommitmentRates
) -> tuple[str, Recommendation | None]:
    """Markdown: each plan's commitment sized on one policy's curve, then every policy priced with and
    without the cheapest of them. Returns the text and the recommendation used for the policies."""
    usage, hours, types = usage_curve(results[sized_on])
    span = float(hours.sum())
    lines = [
        f"Sized on the **{sized_on}** policy's on-demand GPU usage, {span:.1f} h in hourly steps "
        f"({rates.term}, {rates.region}, rates as of {rates.as_of}). Break-even utilisation = 1 - discount: "
        "a commitment used less than that costs more than paying On-Demand.",
    ]
    if span < 24 * 7:
        lines += [
            "",
            f"**Under a week of usage ({span:.1f} h): the commitment assumes these hours repeat all year;** "
            "size a real purchase on a week or more (`--shape week` or a week-long trace).",
        ]
    lines += [
        "",
        "| plan | discount | break-even utilisation | commitment $/h | its utilisation | on-demand $ "
        "| with commitment $ | saving |",
        "|" + "---|" * 8,
    ]
    best: Recommendation | None = None
    for plan, plan_rates in rates.plans.items():
        discount = plan_discount(rates, plan, types) if types else min(plan_rates.discount_by_family.values())
        if discount is None:
            lines.append(
                f"| {plan} | - | - | - | - | - | - | n/a: {', '.join(sorted(types))} not covered by this "
                "plan in data/commitment_rates.yaml |"
            )
            continue
        found = recommend(
            plan=plan, discount=discount, usage=usage, hours=hours, estimate=plan_rates.estimate
        )
        label = " (estimate)" if found.estimate else ""
        lines.append(
            f"| {plan} | {found.discount:.0%}{label} | {found.break_even_utilisation:.0%} | "
            f"{found.commitment_hourly:.3f} | {found.utilisation:.0%} | {found.cost_without:.2f} | "
            f"{found.cost_with:.2f} | {found.saving:.2f} |"
        )
        if best is None or found.cost_with < best.cost_with:
            best = found
    if best is None:
        return "\n".join(lines), None
    lines += [
        "",
        f"Each policy's GPU $ without and with {best.plan} at {best.commitment_hourly:.3f} $/h "
        "(Spot is never covered):",
        "",
        "| policy | GPU $ without | GPU $ with commitment | saving |",
        "|---|---|---|---|",
    ]
    for name, result in results.items():
        with_commitment = priced_with(result, best.commitment_hourly, best.discount)
        saving = result.dollars - with_commitment
        lines.append(f"| {name} | {result.dollars:.2f} | {with_commitment:.2f} | {saving:.2f} |")
    lines += ["", f"Rates: {rates.source}."]
    return "\n".join(lines), best
