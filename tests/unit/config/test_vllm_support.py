"""Config accepts only engine features the pinned vLLM release has (config/vllm_facts/<tag>.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from config import vllm_support
from config.vllm_support import check_engine, facts_for, known_image_tags
from tests.unit.config.test_stage_config import assert_rejected_naming


def _version(data: dict[str, Any]) -> dict[str, Any]:
    version: dict[str, Any] = data["models"][0]["versions"][0]
    return version


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda d: _version(d).update(image_tag="v0.11.0"),
            [
                "models[0].versions[0].image_tag",
                "no facts file for vLLM image tag 'v0.11.0'",
                "allowed: ['v0.33.0']",
            ],
            id="image-tag-without-facts",
        ),
        pytest.param(
            lambda d: _version(d)["engine"].update(
                extra_args=["--enable-chunked-prefill", "--max-lora-rnak=8"]
            ),
            [
                "models[0].versions[0]",
                "engine.extra_args ['--max-lora-rnak=8']",
                "not `vllm serve` flags in v0.33.0",
            ],
            id="extra-arg-not-a-flag",
        ),
        pytest.param(
            lambda d: _version(d).update(max_request_seconds=4000),
            ["models[0].versions[0].max_request_seconds", "less than or equal to 3000"],
            id="max-request-beyond-the-deregistration-limit",
        ),
    ],
)
def test_bad_engine_config_names_file_field_and_allowed(mutate: Any, expected: list[str]) -> None:
    assert_rejected_naming(mutate, expected)


def test_every_stage_pins_a_release_with_facts() -> None:
    assert known_image_tags() == ["v0.33.0"]
    assert facts_for("v0.33.0").image_tag == "v0.33.0"


def test_speculative_method_missing_from_the_release_is_rejected() -> None:
    # v0.33.0 has no Medusa proposer any more: a method must be in the release's SpeculativeMethod.
    with pytest.raises(
        ValueError, match=r"engine.speculative.method 'medusa' is not supported by vLLM v0.33.0"
    ):
        check_engine(image_tag="v0.33.0", quantization="none", speculative_method="medusa", extra_args=[])


def test_a_release_without_draft_models_rejects_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The table is per release: a facts file without draft_model (as v0.11.0's engine args) refuses it."""
    facts = json.loads((vllm_support.FACTS_DIR / "v0.33.0.json").read_text())
    facts["image_tag"] = "v0.0.0-test"
    facts["speculative_methods"] = [m for m in facts["speculative_methods"] if m != "draft_model"]
    facts["quantization_methods"] = [m for m in facts["quantization_methods"] if m != "awq_marlin"]
    (tmp_path / "v0.0.0-test.json").write_text(json.dumps(facts))
    monkeypatch.setattr(vllm_support, "FACTS_DIR", tmp_path)
    vllm_support.facts_for.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"'draft_model' is not supported by vLLM v0\.0\.0-test"):
            check_engine(
                image_tag="v0.0.0-test", quantization="none", speculative_method="draft_model", extra_args=[]
            )
        with pytest.raises(ValueError, match="needs vLLM method 'awq_marlin'"):
            check_engine(image_tag="v0.0.0-test", quantization="awq", speculative_method=None, extra_args=[])
    finally:
        vllm_support.facts_for.cache_clear()


@pytest.mark.parametrize(
    "spelling",
    [
        "--max_num_batched_tokens=4096",
        "--compilation-config.cudagraph_mode=PIECEWISE",
        "--no-enable-log-requests",
    ],
)
def test_extra_args_in_spellings_vllm_accepts_are_known_flags(spelling: str) -> None:
    check_engine(image_tag="v0.33.0", quantization="none", speculative_method=None, extra_args=[spelling])


def test_a_misspelt_flag_in_underscore_form_is_still_unknown() -> None:
    with pytest.raises(ValueError, match=r"\['--max_lora_rnak=8'\] are not `vllm serve` flags"):
        check_engine(
            image_tag="v0.33.0",
            quantization="none",
            speculative_method=None,
            extra_args=["--max_lora_rnak=8"],
        )
