"""In-process HTTPS fake of the Kubernetes API for the Lambda tests and the drain benchmark."""

from .certs import TlsMaterial, make_tls_material
from .objects import make_deployment, make_node, make_pod, make_scaled_object
from .server import FakeKubernetes

__all__ = [
    "FakeKubernetes",
    "TlsMaterial",
    "make_deployment",
    "make_node",
    "make_pod",
    "make_scaled_object",
    "make_tls_material",
]
