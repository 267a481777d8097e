"""Burn-rate thresholds derive from the SLO window as in the SRE workbook; the guard reads config."""

from __future__ import annotations

import pytest

from config import load_stages
from config.serving import ModelConfig
from observability.slo import BURN_WINDOWS, burn_expression, slo_alerts


def _model(**slo: object) -> ModelConfig:
    data = load_stages()["prod"].models[0].model_dump(mode="json")
    data["slo"].update(slo)
    return ModelConfig.model_validate(data)


def test_a_30_day_window_gives_the_workbook_burn_rates() -> None:
    assert [(w.severity, w.long, w.short, w.burn_rate(30)) for w in BURN_WINDOWS] == [
        ("critical", "1h", "5m", 14.4),
        ("critical", "6h", "30m", 6.0),
        ("warning", "3d", "6h", 1.0),
    ]


def test_burn_rates_scale_with_the_window() -> None:
    """The same share of the budget: a 7-day window burns it 30/7 times slower per hour."""
    assert BURN_WINDOWS[0].burn_rate(7) == pytest.approx(14.4 * 7 / 30)


def test_thresholds_are_burn_rate_times_budget_and_the_guard_is_per_second() -> None:
    model = _model(availability_objective=0.995, min_requests_per_hour=360)
    expr = burn_expression(model, "availability", BURN_WINDOWS[0])
    assert 'model:slo_availability_bad:ratio_rate1h{model_id="llama-3-1-8b"} > 0.072\n' in expr
    assert 'model:slo_availability_bad:ratio_rate5m{model_id="llama-3-1-8b"} > 0.072\n' in expr
    assert expr.endswith('model:slo_requests:rate1h{model_id="llama-3-1-8b"} >= 0.1')
    ttft = burn_expression(model, "ttft", BURN_WINDOWS[1])
    assert "model:slo_ttft_bad:ratio_rate6h" in ttft
    assert "> 0.3\n" in ttft  # 6 x (1 - 0.95)


def test_each_model_gets_a_page_pair_and_a_ticket_per_sli() -> None:
    alerts = slo_alerts([_model()], runbook_base_url="https://r")
    labels = sorted((a["alert"], a["labels"]["severity"], a["labels"]["window"]) for a in alerts)
    assert labels == [
        ("AvailabilityBudgetBurn", "critical", "1h"),
        ("AvailabilityBudgetBurn", "critical", "6h"),
        ("AvailabilityBudgetBurn", "warning", "3d"),
        ("TtftBudgetBurn", "critical", "1h"),
        ("TtftBudgetBurn", "critical", "6h"),
        ("TtftBudgetBurn", "warning", "3d"),
    ]
