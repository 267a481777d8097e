"""tools/helm_values_keys.py: how key paths are read from values.yaml, templates and Chart.yaml."""

from __future__ import annotations

from tools.helm_values_keys import image_defaults, key_kinds, referenced_keys, with_references


def test_values_yaml_paths_and_kinds() -> None:
    kinds = key_kinds({"image": {"tag": "", "pullPolicy": None}, "podAnnotations": {}, "args": ["a"]})
    assert kinds == {
        "image": "map",
        "image.tag": "leaf",
        "image.pullPolicy": "leaf",
        "podAnnotations": "free",
        "args": "leaf",
    }


def test_template_references_and_dependency_conditions() -> None:
    templates = ["{{- with .Values.priorityClassName }}", "{{ $.Values.rbac.serviceAccount.name }}"]
    chart_yaml = "dependencies:\n- name: node-feature-discovery\n  condition: nfd.enabled,gfd.enabled\n"
    assert referenced_keys(templates, chart_yaml) == {
        "priorityClassName",
        "rbac.serviceAccount.name",
        "nfd.enabled",
        "gfd.enabled",
    }


def test_references_fill_gaps_but_not_below_free_or_leaf_values() -> None:
    kinds = {"rbac": "map", "podAnnotations": "free", "image": "leaf"}
    merged = with_references(kinds, {"rbac.create", "podAnnotations.x", "image.tag", "nfd.enabled"})
    assert merged == {
        "rbac": "map",
        "rbac.create": "leaf",
        "podAnnotations": "free",
        "image": "leaf",
        "nfd": "map",
        "nfd.enabled": "leaf",
    }


def test_image_defaults_keep_registry_and_repository_leaves() -> None:
    values = {
        "image": {"keda": {"registry": "ghcr.io", "repository": "kedacore/keda", "tag": ""}},
        "global": {"imageRegistry": "", "image": {"registry": None}},
        "kubeRBACProxy": {"image": {"repository": "brancz/kube-rbac-proxy"}},
        "repositoryUrl": "x",
    }
    assert image_defaults(values) == {
        "image.keda.registry": "ghcr.io",
        "image.keda.repository": "kedacore/keda",
        "global.imageRegistry": "",
        "kubeRBACProxy.image.repository": "brancz/kube-rbac-proxy",
    }
