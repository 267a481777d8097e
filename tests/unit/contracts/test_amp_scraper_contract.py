"""AMP managed scraper facts (AMP user guide, "Using an AWS managed collector"), checked on every stage.

- Scraper limitations: "The scraper config can't specify a scrape interval of less than 30 seconds."
- Configuring your Amazon EKS cluster: with authentication mode API or API_AND_CONFIG_MAP, AMP
  creates the scraper's access entry itself; an IAM principal can be in only one access entry.
- Scraper configuration: an ``authorization`` block must be type Bearer with the service account token file.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
import yaml

from observability.scrape_config import AMP_MIN_SCRAPE_INTERVAL_SECONDS, scrape_config
from tests.synth import SynthResult
from tests.templates import resources
from tests.unit.config.test_stage_config import assert_rejected_naming

TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def _seconds(duration: str) -> int:
    assert re.fullmatch(r"\d+s", duration), f"unexpected duration {duration!r}"
    return int(duration[:-1])


def _scrape_documents(synth: SynthResult, stage: str) -> list[dict[str, Any]]:
    scrapers = [
        scraper
        for template in synth.templates[stage].values()
        for scraper in resources(template, "AWS::APS::Scraper").values()
    ]
    assert scrapers, f"{stage} has no AMP scraper"
    return [
        yaml.safe_load(base64.b64decode(s["Properties"]["ScrapeConfiguration"]["ConfigurationBlob"]))
        for s in scrapers
    ]


def test_the_pinned_minimum_is_amps() -> None:
    assert AMP_MIN_SCRAPE_INTERVAL_SECONDS == 30


def test_every_scrape_interval_is_at_least_30_seconds(synth: SynthResult, stage: str) -> None:
    for document in _scrape_documents(synth, stage):
        assert _seconds(document["global"]["scrape_interval"]) >= 30
        for job in document["scrape_configs"]:
            if "scrape_interval" in job:
                assert _seconds(job["scrape_interval"]) >= 30, job["job_name"]


def test_config_refuses_an_interval_amp_would_refuse() -> None:
    assert_rejected_naming(
        lambda d: d.setdefault("observability", {}).update(scrape_interval_seconds=15),
        ["observability.scrape_interval_seconds", "greater than or equal to 30"],
    )


def test_scrape_config_refuses_an_interval_below_the_minimum() -> None:
    with pytest.raises(ValueError, match="below the AMP managed scraper's minimum of 30s"):
        scrape_config(scrape_interval_seconds=29)


def test_no_stack_creates_an_access_entry_for_the_scraper(synth: SynthResult, stage: str) -> None:
    """AMP creates the scraper's access entry; a second one for the same principal fails the deploy."""
    for stack, template in synth.templates[stage].items():
        scraper_ids = set(resources(template, "AWS::APS::Scraper"))
        for logical_id, entry in resources(template, "AWS::EKS::AccessEntry").items():
            principal = json.dumps(entry["Properties"]["PrincipalArn"])
            assert not any(sid in principal for sid in scraper_ids), f"{stack}/{logical_id}"
            assert "scraper" not in principal.lower(), f"{stack}/{logical_id} maps a scraper role"


def test_authorization_blocks_are_the_only_form_amp_accepts(synth: SynthResult, stage: str) -> None:
    for document in _scrape_documents(synth, stage):
        for job in document["scrape_configs"]:
            if "authorization" in job:
                assert job["authorization"] == {"type": "Bearer", "credentials_file": TOKEN_FILE}
            assert "bearer_token" not in job  # a literal token is not accepted


def test_jobs_through_the_api_server_proxy_carry_the_bearer_token(synth: SynthResult, stage: str) -> None:
    for document in _scrape_documents(synth, stage):
        for job in document["scrape_configs"]:
            through_api_server = any(
                rule.get("replacement") == "kubernetes.default.svc:443"
                for rule in job.get("relabel_configs", [])
            )
            if through_api_server:
                assert job.get("authorization", {}).get("credentials_file") == TOKEN_FILE, job["job_name"]
