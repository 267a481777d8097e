"""Prometheus scrape configuration, rules, Alertmanager routing and dashboards, as plain Python data.

Nothing here imports CDK: the stacks render these into CloudFormation, and the tests parse them
exactly as Managed Prometheus would.
"""
