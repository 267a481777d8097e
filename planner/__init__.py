"""Capacity and cost planner: replay a request trace against a stage's scaling rules and price it."""
