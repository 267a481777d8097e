"""EventBridge events the operational functions are invoked by (AWS's own source and detail-types)."""

from __future__ import annotations

from typing import Final

EC2_SOURCE: Final = "aws.ec2"
SPOT_INTERRUPTION_WARNING: Final = "EC2 Spot Instance Interruption Warning"
"""EC2 reclaims the Spot instance two minutes after this event (Amazon EC2 User Guide)."""
REBALANCE_RECOMMENDATION: Final = "EC2 Instance Rebalance Recommendation"
"""An elevated risk of interruption; no fixed deadline."""
SPOT_DETAIL_TYPES: Final = (SPOT_INTERRUPTION_WARNING, REBALANCE_RECOMMENDATION)
