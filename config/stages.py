"""Where a stage ranks: the one place a new stage's position and production status are written."""

from __future__ import annotations

STAGE_ORDER = ("dev", "staging", "prod")
"""Promotion order: stages are listed in it (load_stages), and the pipeline must deploy in it. A stage
not named here is listed after these, by name."""
PRODUCTION_STAGES = ("prod",)
"""Production stages: a safety finding there is an error rather than a warning, and the pipeline
never deploys one without a human's approval."""
