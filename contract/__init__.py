"""Names and facts that cross a boundary (stacks, constructs, charts, observability, Lambdas).

Each is defined here once; everything else imports it. Changing a value is a contract change: the
charts, the alert rules, the functions and the GitOps export move together.

Pure Python with no dependency (the Lambda asset bundles this package next to ``lambdas/``):
no CDK, cdk8s, boto3 or pydantic imports, only typed constants and small pure functions.

- ``contract.kubernetes``: namespaces, labels, taints, node groups, per-model-version names, KEDA.
- ``contract.serving``: the serving ConfigMaps (stage values, guardrail) and the model API key Secret.
- ``contract.events``: EventBridge sources and detail-types the functions are invoked by.
- ``contract.functions``: the environment variables CDK sets on the functions and they read.
- ``contract.telemetry``: Powertools service names, the CloudWatch namespace, scrape and OTLP names.
"""
