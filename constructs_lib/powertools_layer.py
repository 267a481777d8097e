"""The public Powertools for AWS Lambda (Python) layer, by ARN, for the stack's region.

No lookup: the layer is published under the same account, name and version number in every
commercial region, so the ARN is built from the stack's region (a literal when the stage sets
one, the AWS::Region pseudo parameter otherwise).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

POWERTOOLS_LAYER_ACCOUNT = "017000801446"
POWERTOOLS_LAYER_VERSION = 27
"""Pinned layer version (Powertools v3). Bump deliberately, together with aws-lambda-powertools in
requirements-dev.txt, which the Lambda tests run against."""

_LAYER_ARCHITECTURES = {"arm64": "arm64", "x86_64": "x86_64"}


def powertools_layer_arn(*, region: str, partition: str, python: str, architecture: str) -> str:
    """e.g. arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"""
    name = f"AWSLambdaPowertoolsPythonV3-{python}-{_LAYER_ARCHITECTURES[architecture]}"
    return (
        f"arn:{partition}:lambda:{region}:{POWERTOOLS_LAYER_ACCOUNT}:layer:{name}:{POWERTOOLS_LAYER_VERSION}"
    )


def powertools_layer(
    scope: Construct, id_: str, *, runtime: lambda_.Runtime, architecture: lambda_.Architecture
) -> lambda_.ILayerVersion:
    """The layer matching `runtime` (e.g. python3.13 -> python313) and `architecture`."""
    stack = Stack.of(scope)
    python = runtime.name.replace(".", "")
    arn = powertools_layer_arn(
        region=stack.region, partition=stack.partition, python=python, architecture=architecture.name
    )
    return lambda_.LayerVersion.from_layer_version_arn(scope, id_, arn)
