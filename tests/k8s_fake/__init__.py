"""In-process HTTPS fake of the Kubernetes API for the Lambda tests and the drain benchmark."""

from tests.k8s_fake.certs import TlsMaterial, make_tls_material
from tests.k8s_fake.objects import make_deployment, make_node, make_pod
from tests.k8s_fake.server import FakeKubernetes

__all__ = [
    "FakeKubernetes",
    "TlsMaterial",
    "make_deployment",
    "make_node",
    "make_pod",
    "make_tls_material",
]
