"""`engine.extra_args` must not override a flag the registry generates, in any spelling vLLM accepts.

The generated flags are not listed here: they are read from k8s_charts/vllm_args.py by rendering
the version's own command line (and variants that switch on every optional flag), so a flag added
there is guarded here at once. Spellings vLLM's FlexibleArgumentParser (vllm/utils) accepts for one option:
`--flag value`, `--flag=value`, underscores for dashes (`--max_model_len`), a short alias
(`-tp`), `--no-<flag>` for boolean options, a key of a JSON flag (`--speculative-config.method`), and
an abbreviation argparse expands (`--max-model`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.serving import ModelVersion

VLLM_SHORT_ALIASES = {
    "-q": "--quantization",
    "-tp": "--tensor-parallel-size",
    "-pp": "--pipeline-parallel-size",
    "-dp": "--data-parallel-size",
}
"""Short aliases of vLLM engine flags (vllm/engine/arg_utils.py, EngineArgs.add_cli_args)."""


FIELD_OF_FLAG = {
    "--tensor-parallel-size": "set gpus_per_replica",
    "--speculative-config": "set engine.speculative",
    "--model": "set source",
    "--served-model-name": "set served_model_name",
    "--load-format": "it follows source: bucket:// and s3:// stream from S3",
    "--shutdown-timeout": "set max_request_seconds",
    "--otlp-traces-endpoint": "tracing is configured by the stage",
}
"""Where to make a change that a generated flag carries, when the field is not named like the flag."""


def canonical_flag(token: str) -> str | None:
    """The long flag a command-line token sets, or None for a value."""
    if not token.startswith("-") or re.fullmatch(r"-\d.*", token):
        return None  # a value (a negative number is not a flag)
    name = token.split("=", 1)[0]
    if not name.startswith("--"):
        return VLLM_SHORT_ALIASES.get(name, name)
    # `--json-flag.key value` sets one key of a JSON flag; vLLM rewrites '_' only before the first '.'.
    name = "--" + name[2:].split(".", 1)[0].replace("_", "-")
    return "--" + name.removeprefix("--no-") if name.startswith("--no-") else name


def generated_flags(version: ModelVersion) -> set[str]:
    """Every flag vllm_args() can emit for this version, whichever optional engine features are on."""
    # Imported here: k8s_charts imports the config models, so a module-level import would be circular.
    from config.serving import Quantization, SpeculativeDecoding, SpeculativeMethod
    from k8s_charts.vllm_args import vllm_args

    bare = version.model_copy(update={"engine": version.engine.model_copy(update={"extra_args": []})})
    everything_on = bare.model_copy(
        update={
            "source": "bucket://flags",
            "engine": bare.engine.model_copy(
                update={
                    "quantization": Quantization.AWQ,
                    "enable_prefix_caching": False,
                    # Unvalidated on purpose: only the flags matter, not whether an engine accepts this.
                    "speculative": SpeculativeDecoding.model_construct(
                        method=SpeculativeMethod.NGRAM, num_speculative_tokens=1, prompt_lookup_max=4
                    ),
                }
            ),
        }
    )
    flags = {"--model"}  # vllm_args passes the model positionally; `--model` would set it again
    for variant in (bare, everything_on):
        flags |= {
            flag for token in vllm_args(variant, model_bucket_name="b") if (flag := canonical_flag(token))
        }
    return flags


def extra_args_problems(version: ModelVersion) -> list[str]:
    """Why the version's extra_args are refused (empty when they are fine)."""
    from config.serving import EngineOptions

    problems = []
    generated = generated_flags(version)
    for arg in version.engine.extra_args:
        head = arg.split("=", 1)[0]
        if arg.startswith("-") and re.search(r"\s", head):
            problems.append(
                f"{arg!r} holds several arguments in one item, which vLLM reads as one unknown flag; "
                f"allowed: one argument per item, e.g. {arg.split()[:2]}"
            )
        flag = canonical_flag(arg.split()[0] if arg.strip() else arg)
        if flag is None:
            continue
        expands_to = [name for name in sorted(generated) if flag.startswith("--") and name.startswith(flag)]
        if flag not in generated and expands_to:
            problems.append(
                f"{arg!r} abbreviates {', '.join(expands_to)}, which the registry generates (argparse "
                "expands a unique prefix); remove it"
            )
        if flag in generated:
            field = flag.removeprefix("--").replace("-", "_")
            instead = FIELD_OF_FLAG.get(flag) or (
                f"set engine.{field}" if field in EngineOptions.model_fields else "see config/README.md"
            )
            problems.append(f"{arg!r} overrides {flag}, which the registry generates; remove it ({instead})")
    return problems
