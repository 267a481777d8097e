"""tools/vllm_facts.py reads each fact where vLLM declares it, on a miniature wheel of the same layout."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tools import vllm_facts

FILES = {
    "vllm/config/cache.py": """
class CacheConfig:
    DEFAULT_BLOCK_SIZE: ClassVar[int] = 32
    enable_prefix_caching: bool | None = None
    block_size: int = Field(default=None, gt=0)
    kv_offloading: bool | str | None = None
""",
    "vllm/engine/arg_utils.py": """
import argparse
def add_cli_args(parser):
    cache_kwargs = get_kwargs(CacheConfig)
    group.add_argument(
        "--enable-prefix-caching", **{**cache_kwargs["enable_prefix_caching"], "default": None}
    )
    group.add_argument("--block-size", **cache_kwargs["block_size"])
    group.add_argument("--kv-offloading", **cache_kwargs["kv_offloading"])
    parser.add_argument("--shutdown-timeout", type=int, default=0)
    parser.add_argument("--fail-fast", action=argparse.BooleanOptionalAction)
    parser.add_argument("--quantization", "-q", type=str)
""",
    "vllm/entrypoints/common/cli_args.py": """
class BaseFrontendArgs:
    chat_template: str | None = None
    enable_log_requests: bool = False
class FrontendArgs(BaseFrontendArgs):
    port: int = 8000
def make_arg_parser(parser):
    parser.add_argument("--headless", action="store_true")
""",
    "vllm/envs.py": """
import os
environment_variables: dict[str, object] = {
    "VLLM_HTTP_TIMEOUT_KEEP_ALIVE": lambda: int(os.environ.get("VLLM_HTTP_TIMEOUT_KEEP_ALIVE", "5")),
    "VLLM_API_KEY": lambda: os.environ.get("VLLM_API_KEY", None),
}
""",
    "vllm/usage/usage_lib.py": 'import os\nif os.environ.get("DO_NOT_TRACK"):\n    pass\n',
    "vllm/config/speculative.py": """
from typing import Literal
MTPModelTypes = Literal["deepseek_mtp", "mtp"]
EagleModelTypes = Literal["eagle", "eagle3", MTPModelTypes]
SpeculativeMethod = Literal["ngram", "draft_model", EagleModelTypes]
class SpeculativeConfig:
    method: SpeculativeMethod | None = None
    model: str | None = None
    num_speculative_tokens: int = 1
""",
    "vllm/model_executor/layers/quantization/__init__.py": """
from typing import Literal
QuantizationMethods = Literal["awq", "awq_marlin", "fp8"]
""",
    "vllm/model_executor/model_loader/__init__.py": """
_LOAD_FORMAT_TO_MODEL_LOADER = {"auto": A, "runai_streamer": B, "safetensors": C}
""",
    "vllm/model_executor/model_loader/runai_streamer_loader.py": """
env_updates["RUNAI_STREAMER_MEMORY_LIMIT"] = str(memory_limit)
""",
    "vllm/v1/metrics/loggers.py": """
class PrometheusStatLogger:
    def __init__(self):
        self._gauge_cls(name="vllm:num_requests_running", documentation="")
        self._counter_cls(name="vllm:prompt_tokens", documentation="")
        self._histogram_cls(name="vllm:time_to_first_token_seconds", documentation="")
        counter_specs = [("vllm:spec_decode_num_drafts", "drafts")]
        unrelated = "vllm:not_a_metric"
""",
    "vllm/entrypoints/serve/instrumentator/metrics.py": """
def attach_router(app):
    Instrumentator(excluded_handlers=["/metrics"]).add().instrument(app).expose(app)
""",
    "vllm/entrypoints/openai/completion/api_router.py": """
router = APIRouter()
@router.post("/v1/completions", dependencies=[Depends(validate_json_request)])
@with_cancellation
async def create_completion(request, raw_request):
    pass
@router.get("/v1/models")
def show_available_models(raw_request):
    pass
@some_decorator("/not/a/route")
def helper():
    pass
""",
    "vllm-9.9.9.dist-info/METADATA": """Name: vllm
Version: 9.9.9
Requires-Dist: opentelemetry-sdk>=1.27.0
Requires-Dist: opentelemetry-exporter-otlp>=1.27.0
Requires-Dist: runai-model-streamer[s3]>=0.15.7; extra == "runai"
""",
}


@pytest.fixture(scope="module")
def facts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    wheel = tmp_path_factory.mktemp("wheel") / "vllm-9.9.9-cp38-abi3-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in FILES.items():
            archive.writestr(name, text)
    return vllm_facts.facts(wheel)


def test_flags_with_their_boolean_negations(facts: dict[str, object]) -> None:
    assert facts["serve_flags"] == sorted(
        [
            "--block-size",
            "--chat-template",
            "--enable-log-requests",
            "--no-enable-log-requests",  # bool frontend field
            "--enable-prefix-caching",
            "--no-enable-prefix-caching",  # bool config field behind the flag
            "--kv-offloading",  # bool | str: an optional-valued flag, no --no- form
            "--fail-fast",
            "--no-fail-fast",  # explicit BooleanOptionalAction
            "--headless",
            "--port",
            "--quantization",
            "--shutdown-timeout",
        ]
    )


def test_environment_speculative_quantization_and_loader_facts(facts: dict[str, object]) -> None:
    assert facts["env_vars"] == ["VLLM_API_KEY", "VLLM_HTTP_TIMEOUT_KEEP_ALIVE"]
    assert "DO_NOT_TRACK" in facts["env_read_by_code"]  # type: ignore[operator]
    assert facts["speculative_methods"] == ["deepseek_mtp", "draft_model", "eagle", "eagle3", "mtp", "ngram"]
    assert facts["speculative_config_keys"] == ["method", "model", "num_speculative_tokens"]
    assert facts["quantization_methods"] == ["awq", "awq_marlin", "fp8"]
    assert facts["load_formats"] == ["auto", "runai_streamer", "safetensors"]
    assert facts["runai_streamer_env"] == ["RUNAI_STREAMER_MEMORY_LIMIT"]
    assert facts["base_requirements"] == {"opentelemetry-exporter-otlp": True, "opentelemetry-sdk": True}
    # The class constant the validator applies to block_size None, not the field's own default.
    assert facts["default_block_size"] == 32


def test_metric_names_as_exposed(facts: dict[str, object]) -> None:
    assert facts["metrics"] == {
        # prometheus_client appends _total to counters; the instrumentator adds the HTTP series.
        "counters": ["http_requests_total", "vllm:prompt_tokens_total", "vllm:spec_decode_num_drafts_total"],
        "gauges": ["vllm:num_requests_running"],
        "histograms": [
            "http_request_duration_highr_seconds",
            "http_request_duration_seconds",
            "vllm:time_to_first_token_seconds",
        ],
    }


def test_http_routes_from_the_route_decorators(facts: dict[str, object]) -> None:
    assert facts["http_routes"] == ["GET /v1/models", "POST /v1/completions"]


def test_main_writes_the_file_named_after_the_image_tag(tmp_path: Path, facts: dict[str, object]) -> None:
    wheel = tmp_path / "vllm-9.9.9-cp38-abi3-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in FILES.items():
            archive.writestr(name, text)
    assert vllm_facts.main([str(wheel), str(tmp_path)]) == 0
    written = json.loads((tmp_path / "v9.9.9.json").read_text())
    assert written["image_tag"] == "v9.9.9"
    assert written["source"]["wheel"] == wheel.name
    assert len(written["source"]["sha256"]) == 64


def test_the_committed_facts_file_records_its_wheel() -> None:
    committed = json.loads(
        (Path(vllm_facts.__file__).parents[1] / "config/vllm_facts/v0.33.0.json").read_text()
    )
    assert committed["source"]["generator"] == "tools/vllm_facts.py"
    assert committed["source"]["wheel"] == "vllm-0.33.0-cp38-abi3-manylinux_2_28_x86_64.whl"
    assert len(committed["source"]["sha256"]) == 64
    # vllm/config/cache.py in vllm-0.33.0: CacheConfig.DEFAULT_BLOCK_SIZE = 16 (the planner's prefix cache).
    assert committed["default_block_size"] == 16
    # vllm/entrypoints/openai/completion/api_router.py in vllm-0.33.0 (the smoke check's 1-token request).
    assert "POST /v1/completions" in committed["http_routes"]
