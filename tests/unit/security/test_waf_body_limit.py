"""Issue #14 item 7: the WAF blocks a declared body larger than the stage's longest prompt needs."""

from __future__ import annotations

import random
import re

import pytest

from constructs_lib.edge_web_acl import greater_than_regex
from stacks.serving_stack import BODY_BYTES_PER_TOKEN, BODY_OVERHEAD_BYTES, max_request_body_bytes
from tests.synth import SynthResult
from tests.templates import resources


@pytest.mark.parametrize("limit", [0, 9, 10, 99, 100, 524288, 589824, 999999, 1000000, 4096000])
def test_regex_matches_exactly_the_integers_above_the_limit(limit: int) -> None:
    pattern = re.compile(greater_than_regex(limit))
    rng = random.Random(limit)
    candidates = {0, 1, limit - 1, limit, limit + 1, limit * 10, 10 ** len(str(limit))}
    candidates |= {rng.randrange(0, limit * 3 + 10) for _ in range(2000)}
    for number in sorted(c for c in candidates if c >= 0):
        assert bool(pattern.fullmatch(str(number))) == (number > limit), number
    assert not pattern.fullmatch("abc")
    assert not pattern.fullmatch("")


def test_every_stage_blocks_bodies_above_its_longest_context(synth: SynthResult, stage: str) -> None:
    config = synth.configs[stage]
    longest = max(v.engine.max_model_len for m in config.models for v in m.versions)
    limit = max_request_body_bytes(config)
    assert limit == longest * BODY_BYTES_PER_TOKEN + BODY_OVERHEAD_BYTES
    (acl,) = resources(synth.templates[stage]["Serving"], "AWS::WAFv2::WebACL").values()
    (rule,) = [r for r in acl["Properties"]["Rules"] if r["Name"] == "BodyLargerThanAnyPrompt"]
    assert rule["Action"] == {"Block": {}}
    statement = rule["Statement"]["RegexMatchStatement"]
    assert statement["FieldToMatch"] == {"SingleHeader": {"Name": "content-length"}}
    assert statement["RegexString"] == greater_than_regex(limit)
    assert len(statement["RegexString"]) <= 512  # the WAF's RegexString limit
