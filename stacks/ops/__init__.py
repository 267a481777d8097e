"""Constructs of the OpsStack: the Spot interruption handler and the off-hours scaler."""
