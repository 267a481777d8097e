"""The stage's model API key: a generated Secrets Manager secret under its own rotating CMK."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from constructs_lib.nag import acknowledge
from constructs_lib.rotating_key import RotatingRetainedKey

API_KEY_LENGTH = 64  # letters and digits: ~380 bits, and safe in an HTTP header without quoting


class ModelApiKey(Construct):
    """Exposes ``secret`` and ``key``.

    CloudFormation generates the value at deploy time, so it never appears in a template,
    manifest or the repository. Rotate with `put-secret-value` (docs/security.md).
    """

    def __init__(self, scope: Construct, id_: str, *, description: str) -> None:
        super().__init__(scope, id_)
        self.key = RotatingRetainedKey(
            self,
            "Key",
            description=f"Encrypts: {description}",
        )
        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            description=description,
            encryption_key=self.key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=API_KEY_LENGTH, exclude_punctuation=True, include_space=False
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.secret,
            "AwsSolutions-SMG4",
            reason="Rotated on purpose, not on a schedule: vLLM reads the key once at startup, so a "
            "rotation is put-secret-value, wait for the sync, then a rolling restart, with clients "
            "falling back to AWSPREVIOUS meanwhile (docs/security.md). A scheduled rotation would "
            "change the key under clients without that restart.",
        )
