"""Trace readers: Azure 2023 and 2024 (offsets honoured), Mooncake JSONL, simple CSV; detected from the
first line; plausibility warnings that name the likely cause."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from planner.readers import read_trace
from planner.trace import DEFAULT_TRACE, TraceError, load_trace, thin, with_warmup

AZURE = "TIMESTAMP,ContextTokens,GeneratedTokens\n"


def write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_azure_2024_offsets_are_honoured_and_whole_seconds_accepted(tmp_path: Path) -> None:
    text = AZURE + "2024-05-12 02:00:00.500000+02:00,10,3\n2024-05-12 00:00:01+00:00,20,4\n"
    trace = load_trace(write(tmp_path, text))
    assert trace.format_name == "azure-2024"
    # 02:00:00.5 at +02:00 is 00:00:00.5 UTC: the first request, half a second in.
    assert trace.start == datetime(2024, 5, 12, 0, 0, tzinfo=UTC)
    assert trace.arrival.tolist() == pytest.approx([0.5, 1.0])
    assert trace.prompt_tokens.tolist() == [10, 20]


def test_azure_2023_without_offset_is_read_as_utc(tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path, AZURE + "2023-11-16 18:15:46.6805900,374,44\n"))
    assert trace.format_name == "azure-2023"
    assert trace.start == datetime(2023, 11, 16, 18, 15, tzinfo=UTC)
    assert trace.arrival == pytest.approx([46.68059])


def test_fast_and_row_by_row_paths_agree_on_the_bundled_trace() -> None:
    trace = load_trace(DEFAULT_TRACE)
    assert trace.format_name == "azure-2023"
    head = DEFAULT_TRACE.read_text(encoding="utf-8").splitlines()[:4]
    from planner.readers import _azure_seconds

    first = _azure_seconds(head[1].split(",")[0], "x") - trace.start.timestamp()
    assert trace.arrival[0] == pytest.approx(first, abs=1e-6)


def test_mooncake_jsonl_keeps_block_hashes_and_reads_milliseconds(tmp_path: Path) -> None:
    records = [
        {"timestamp": 3000, "input_length": 600, "output_length": 5, "hash_ids": [0, 2]},
        {"timestamp": 0, "input_length": 1000, "output_length": 7, "hash_ids": [0, 1]},
    ]
    path = write(tmp_path, "\n".join(json.dumps(r) for r in records) + "\n", "trace.jsonl")
    trace = load_trace(path)
    assert trace.format_name == "mooncake"
    assert trace.arrival.tolist() == [0.0, 3.0]
    assert trace.block_hashes is not None
    assert trace.block_hashes.tolist() == [(0, 1), (0, 2)]
    assert trace.shared_prefix_share() == 0.25  # block 0 seen again, once in four
    # Thinning and the warm-up copy keep the hashes aligned with their requests.
    assert with_warmup(trace, 1.0)[0].block_hashes.tolist() == [(0, 1), (0, 1), (0, 2)]  # type: ignore[union-attr]
    assert thin(trace, 0.0, 1).block_hashes.tolist() == []  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"timestamp": 1}\n', r"trace.csv:1: missing input_length, output_length"),
        ('{"timestamp": -5, "input_length": 1, "output_length": 1}\n', "milliseconds >= 0"),
        ("{not json\n", "trace.csv:1: not a JSON object"),
        (AZURE + "2024-05-12T00:00:00+0200,1,1\n", "is not 'YYYY-MM-DD HH:MM:SS"),
        (AZURE + "2024-05-12 00:00:00,0,1\n", "prompt tokens 0 is below 1"),
        (
            AZURE + "2024-05-12 00:00:00,1,1\n2024-05-12 00:00:01,12.5,1\n",
            r"trace.csv:3: prompt tokens '12.5'",
        ),
    ],
)
def test_bad_records_name_the_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        load_trace(write(tmp_path, text))


def _simple(arrivals: np.ndarray, prompt: int = 500, output: int = 100) -> str:
    rows = "".join(f"{a:g},{prompt},{output}\n" for a in arrivals)
    return "arrival_seconds,prompt_tokens,output_tokens\n" + rows


def test_milliseconds_left_in_a_seconds_column_are_flagged(tmp_path: Path) -> None:
    # An hour at ~3 requests/s written in milliseconds reads as 1,000 hours at 0.003 requests/s.
    arrivals = np.round(np.sort(np.random.default_rng(1).uniform(0, 3_600_000, 10_000)))
    raw = read_trace(write(tmp_path, _simple(arrivals)))
    assert any("probably milliseconds" in warning for warning in raw.warnings)
    seconds = read_trace(write(tmp_path, _simple(arrivals / 1000), "ok.csv"))
    assert seconds.warnings == ()


def test_epoch_times_in_a_seconds_column_are_refused_with_the_cause(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="looks like Unix epoch time"):
        read_trace(write(tmp_path, _simple(np.arange(1.7e9, 1.7e9 + 100))))


def test_gaps_and_swapped_columns_are_flagged(tmp_path: Path) -> None:
    gap = read_trace(write(tmp_path, _simple(np.concatenate([np.arange(100.0), np.arange(100.0) + 9000]))))
    assert any("gap of 2.5 h" in warning for warning in gap.warnings)
    swapped = read_trace(write(tmp_path, _simple(np.arange(100.0), prompt=100, output=2000)))
    assert any("may be swapped" in warning for warning in swapped.warnings)


def test_warnings_reach_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from planner.cli import main

    path = write(tmp_path, _simple(np.arange(0.0, 400.0, 2.0), prompt=100, output=2000))
    main(
        [
            "--stage",
            "dev",
            "--trace",
            str(path),
            "--no-progress",
            "--out",
            str(tmp_path / "out"),
            "--no-fit-load",
        ]
    )
    assert "may be swapped" in capsys.readouterr().err
    assert "Trace warning" in (tmp_path / "out" / "dev" / "report.md").read_text(encoding="utf-8")


def test_token_counts_are_read_as_32_bit_and_a_count_past_that_is_named(tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path, "arrival_seconds,prompt_tokens,output_tokens\n0.5,2147483647,3\n"))
    assert trace.prompt_tokens.dtype == np.int32
    assert trace.output_tokens.dtype == np.int32
    assert trace.prompt_tokens.tolist() == [2_147_483_647]
    path = write(tmp_path, "arrival_seconds,prompt_tokens,output_tokens\n0.5,10,2147483648\n", "big.csv")
    named = r"big\.csv: output tokens up to 2,147,483,648; at most 2,147,483,647"
    with pytest.raises(TraceError, match=named):
        load_trace(path)
