"""Trace file formats, detected from the file's first line, and a plausibility check of what was read.

Formats (each is documented in planner/README.md, "Traces"):

* ``azure-2023``: CSV ``TIMESTAMP,ContextTokens,GeneratedTokens``, times like
  ``2023-11-16 18:15:46.6805900`` without an offset, read as UTC (github.com/Azure/AzurePublicDataset,
  AzureLLMInferenceTrace_{code,conv}.csv).
* ``azure-2024``: the same columns with an offset, ``2024-05-12 00:00:00.001163+00:00`` or whole
  seconds ``2024-05-12 00:00:00+00:00`` (the week-long AzureLLMInferenceTrace_*_1week.csv; the
  dataset's own notebook reads both forms). Offsets are honoured.
* ``mooncake``: JSON lines ``{"timestamp": ms, "input_length": n, "output_length": n, "hash_ids": [...]}``
  (github.com/kvcache-ai/Mooncake, FAST25-release/traces). Timestamps are milliseconds from the
  trace's start; ``hash_ids`` (one id per 512-token block of the prompt, ids shared between requests
  with a shared prefix) are kept on the trace.
* ``simple``: CSV ``arrival_seconds,prompt_tokens,output_tokens``, seconds from the trace's start.

Large files are parsed column-wise with numpy; a file that fails the fast path is re-read row by
row so that the error names the line and the field.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
SIMPLE_COLUMNS = ("arrival_seconds", "prompt_tokens", "output_tokens")
MOONCAKE_FIELDS = ("timestamp", "input_length", "output_length")
MOONCAKE_BLOCK_TOKENS = 512  # ceil(input_length / 512) hash ids per record in the released traces
# Simple-format traces carry no date: they start here unless --start says otherwise.
UNDATED_ORIGIN = datetime(2024, 1, 1, 9, tzinfo=UTC)


class TraceError(ValueError):
    """A trace file or shaping request that cannot be used; the message names file, line and field."""


@dataclass(frozen=True)
class RawTrace:
    """What a reader found: arrivals in seconds from ``origin`` (unsorted), token counts, findings."""

    arrival: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    origin: datetime
    format_name: str
    block_hashes: np.ndarray | None = None  # object array of tuples, one per request (mooncake)
    warnings: tuple[str, ...] = ()


def read_trace(path: Path) -> RawTrace:
    if not path.is_file():
        raise TraceError(f"{path}: trace file not found")
    text = path.read_text(encoding="utf-8-sig")
    first = _first_nonblank(text)
    if not first:
        raise TraceError(
            f"{path}: empty file; expected a header {','.join(SIMPLE_COLUMNS)} or {','.join(AZURE_COLUMNS)}, "
            "or Mooncake JSON lines"
        )
    if first.lstrip().startswith("{"):
        raw = _read_mooncake(path, text)
    else:
        columns = tuple(name.strip() for name in first.split(","))
        if columns[:3] == AZURE_COLUMNS:
            raw = _read_azure(path, text)
        elif columns[:3] == SIMPLE_COLUMNS:
            raw = _read_simple(path, text)
        else:
            raise TraceError(
                f"{path}: header {list(columns)} is not a known trace format; allowed: "
                f"{','.join(SIMPLE_COLUMNS)} (simple), {','.join(AZURE_COLUMNS)} (Azure 2023/2024) "
                "or Mooncake JSON lines"
            )
    if raw.arrival.size == 0:
        raise TraceError(f"{path}: no requests after the header")
    earliest = float(raw.arrival.min())
    if raw.format_name == "simple" and earliest > 1e9:
        # Not a warning: decades of empty time before the first request cannot be simulated.
        raise TraceError(
            f"{path}: arrival_seconds start at {earliest:.0f}, which looks like Unix epoch time rather than "
            "seconds from the start; subtract the first arrival, or use the Azure format with timestamps"
        )
    found = plausibility(raw)
    return replace(raw, warnings=tuple(f"{path.name}: {text}" for text in found))


# CSV: a fast column-wise path and a row-by-row path that names the bad line.


def _first_nonblank(text: str, after_header: bool = False) -> str:
    """The first non-blank line (after the first line when ``after_header``), without splitting the
    whole file into lines ("" when there is none)."""
    position = text.find("\n") + 1 if after_header else 0
    while 0 < position <= len(text) or (position == 0 and not after_header):
        end = text.find("\n", position)
        line = text[position:] if end < 0 else text[position:end]
        if line.strip():
            return line
        if end < 0:
            return ""
        position = end + 1
    return ""


CHUNK_ROWS = 250_000  # rows parsed at a time: bounds the Python strings alive at once


def _chunks(path: Path, text: str) -> Iterator[str]:
    """The body after the header in pieces of about CHUNK_ROWS whole lines."""
    _, _, body = text.partition("\n")
    if "\r" in body:
        body = body.replace("\r", "")
    if not body.strip():
        raise TraceError(f"{path}: no requests after the header")
    start = 0
    while start < len(body):
        end = start
        for _ in range(CHUNK_ROWS):
            end = body.find("\n", end) + 1
            if end == 0:
                end = len(body)
                break
        yield body[start:end]
        start = end


def _columns(chunk: str) -> list[list[str]] | None:
    """A chunk's three columns as lists of cells, or None when rows do not all have three cells."""
    chunk = chunk.strip("\n")
    if "\n\n" in chunk:
        chunk = "\n".join(line for line in chunk.split("\n") if line.strip())
    if not chunk.strip():
        return [[], [], []]
    rows = chunk.count("\n") + 1
    cells = chunk.replace("\n", ",").split(",")
    if len(cells) != 3 * rows:
        return None
    if ", " in chunk or " ," in chunk or chunk.startswith(" ") or "\n " in chunk:
        cells = [cell.strip() for cell in cells]
    return [cells[0::3], cells[1::3], cells[2::3]]


def _parse_fast(
    path: Path, text: str, parse: Callable[[list[list[str]]], tuple[np.ndarray, ...] | None]
) -> tuple[np.ndarray, ...] | None:
    """Parse chunk by chunk; None as soon as one chunk is not clean (the caller re-reads row by row)."""
    parts: list[tuple[np.ndarray, ...]] = []
    for chunk in _chunks(path, text):
        columns = _columns(chunk)
        parsed = None if columns is None else parse(columns)
        if parsed is None:
            return None
        parts.append(parsed)
    return tuple(np.concatenate(arrays) for arrays in zip(*parts, strict=True))


def _numbers_fast(column: list[str], dtype: type) -> np.ndarray | None:
    """A column parsed by numpy in one pass; None if any cell is not a number of that type."""
    if any(not cell or " " in cell for cell in column[:1]):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a bad cell ends the parse early; the count check catches it
        try:
            values: np.ndarray = np.fromstring(" ".join(column), sep=" ", dtype=dtype)
        except ValueError:
            return None
    if values.size != len(column):
        return None
    return values


def _tokens_fast(column: list[str]) -> np.ndarray | None:
    values = _numbers_fast(column, np.int64)
    if values is None or (values.size and int(values.min()) < 1):
        return None
    return values


def _simple_chunk(columns: list[list[str]]) -> tuple[np.ndarray, ...] | None:
    prompt, output = _tokens_fast(columns[1]), _tokens_fast(columns[2])
    arrival = _numbers_fast(columns[0], np.float64)
    if prompt is None or output is None or arrival is None:
        return None
    if arrival.size and (not bool(np.all(np.isfinite(arrival))) or float(arrival.min()) < 0):
        return None
    return arrival, prompt, output


def _azure_chunk(columns: list[list[str]]) -> tuple[np.ndarray, ...] | None:
    prompt, output = _tokens_fast(columns[1]), _tokens_fast(columns[2])
    epoch = _azure_times_fast(columns[0])
    if prompt is None or output is None or epoch is None:
        return None
    return epoch, prompt, output


def _read_simple(path: Path, text: str) -> RawTrace:
    fast = _parse_fast(path, text, _simple_chunk)
    if fast is not None:
        return RawTrace(fast[0], fast[1], fast[2], UNDATED_ORIGIN, "simple")
    times, prompts, outputs = _read_rows(path, text, _plain_seconds)
    return RawTrace(np.asarray(times), np.asarray(prompts), np.asarray(outputs), UNDATED_ORIGIN, "simple")


def _read_azure(path: Path, text: str) -> RawTrace:
    fast = _parse_fast(path, text, _azure_chunk)
    if fast is not None:
        epoch, prompt, output = fast
    else:
        times, prompts, outputs = _read_rows(path, text, _azure_seconds)
        epoch, prompt, output = np.asarray(times), np.asarray(prompts), np.asarray(outputs)
    with_offset = _has_offset(_first_nonblank(text, after_header=True).split(",")[0].strip())
    first = float(epoch.min())
    origin = datetime.fromtimestamp(math.floor(first / 60) * 60, tz=UTC)
    return RawTrace(
        epoch - origin.timestamp(), prompt, output, origin, "azure-2024" if with_offset else "azure-2023"
    )


def _has_offset(stamp: str) -> bool:
    return stamp.endswith("Z") or (len(stamp) > 6 and stamp[-6] in "+-" and stamp[-3] == ":")


def _azure_times_fast(column: list[str]) -> np.ndarray | None:
    """Seconds since the Unix epoch (UTC) for a column of Azure timestamps; None if any is unusual."""
    stamps = np.asarray(column)
    offsets = np.zeros(stamps.size)
    if not column:
        return np.zeros(0)
    if _has_offset(column[0]):
        tails = np.asarray([stamp[-6:] for stamp in column])
        if not bool(np.all(np.char.count(tails, ":") == 1)):
            return None
        try:
            signs = np.where(np.char.startswith(tails, "-"), -1.0, 1.0)
            hours = np.char.lstrip(np.char.partition(tails, ":")[:, 0], "+-").astype(np.int64)
            minutes = np.char.partition(tails, ":")[:, 2].astype(np.int64)
        except ValueError:
            return None
        offsets = signs * (hours * 3600 + minutes * 60)
        stamps = np.asarray([stamp[:-6] for stamp in column])
    # Only 'YYYY-MM-DD HH:MM:SS[.f]' goes to numpy (which would also take 'T' and zone suffixes).
    shaped = (
        np.all(np.char.find(stamps, " ") == 10)
        & np.all(np.char.count(stamps, "-") == 2)
        & np.all(np.char.count(stamps, ":") == 2)
        & ~np.any(np.char.count(stamps, "+") + np.char.count(stamps, "Z") + np.char.count(stamps, "T"))
    )
    if not shaped:
        return None
    try:
        moments = stamps.astype("datetime64[us]")
    except ValueError:
        return None
    if bool(np.any(np.isnat(moments))):
        return None
    return np.asarray(moments.astype(np.int64) / 1e6 - offsets, dtype=np.float64)


def _read_rows(
    path: Path, text: str, to_seconds: Callable[[str, str], float]
) -> tuple[list[float], list[int], list[int]]:
    times: list[float] = []
    prompts: list[int] = []
    outputs: list[int] = []
    reader = csv.reader(io.StringIO(text))
    next(reader, None)
    for line_number, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < 3:
            raise TraceError(f"{path}:{line_number}: expected 3 columns, found {len(row)}: {row}")
        where = f"{path}:{line_number}"
        times.append(to_seconds(row[0].strip(), where))
        prompts.append(_tokens(row[1], where, "prompt tokens"))
        outputs.append(_tokens(row[2], where, "output tokens"))
    return times, prompts, outputs


def _tokens(text: str, where: str, what: str, minimum: int = 1) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise TraceError(f"{where}: {what} {text!r} is not an integer") from None
    if value < minimum:
        raise TraceError(f"{where}: {what} {value} is below {minimum}")
    return value


def _plain_seconds(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TraceError(f"{where}: arrival_seconds {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise TraceError(f"{where}: arrival_seconds {text!r} must be a finite number >= 0")
    return value


def _azure_seconds(text: str, where: str) -> float:
    stamp = text.strip()
    offset = ""
    if stamp.endswith("Z"):
        stamp, offset = stamp[:-1], "+00:00"
    elif _has_offset(stamp):
        stamp, offset = stamp[:-6], stamp[-6:]
    whole, _, fraction = stamp.partition(".")
    try:
        moment = datetime.strptime(whole + (offset or "+00:00"), "%Y-%m-%d %H:%M:%S%z")
        micros = int((fraction + "000000")[:6]) if fraction else 0
    except ValueError:
        raise TraceError(
            f"{where}: TIMESTAMP {text!r} is not 'YYYY-MM-DD HH:MM:SS[.fffffff][+HH:MM]'"
        ) from None
    return moment.timestamp() + micros / 1e6


# Mooncake / Kimi JSON lines.


def _read_mooncake(path: Path, text: str) -> RawTrace:
    times: list[float] = []
    prompts: list[int] = []
    outputs: list[int] = []
    hashes: list[tuple[int, ...]] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise TraceError(f"{where}: not a JSON object ({error.msg})") from None
        missing = [name for name in MOONCAKE_FIELDS if not isinstance(record, dict) or name not in record]
        if missing:
            raise TraceError(
                f"{where}: missing {', '.join(missing)}; Mooncake records need {MOONCAKE_FIELDS}"
            )
        stamp = record["timestamp"]
        if not isinstance(stamp, int | float) or not math.isfinite(stamp) or stamp < 0:
            raise TraceError(f"{where}: timestamp {stamp!r} must be a number of milliseconds >= 0")
        times.append(float(stamp) / 1000.0)
        prompts.append(_tokens(record["input_length"], where, "input_length"))
        outputs.append(_tokens(record["output_length"], where, "output_length"))
        hashes.append(tuple(int(value) for value in record.get("hash_ids", ())))
    blocks = np.empty(len(hashes), dtype=object)
    blocks[:] = hashes
    return RawTrace(
        np.asarray(times), np.asarray(prompts, np.int64), np.asarray(outputs, np.int64), UNDATED_ORIGIN,
        "mooncake", blocks,
    )  # fmt: skip


# Plausibility: warn, with the likely cause, when the numbers do not look like an LLM service.


def plausibility(raw: RawTrace) -> list[str]:
    found: list[str] = []
    arrival = np.sort(raw.arrival)
    span = float(arrival[-1] - arrival[0]) if arrival.size > 1 else 0.0
    rate = arrival.size / span if span > 0 else math.inf
    whole = bool(np.all(arrival == np.round(arrival)))
    if arrival.size >= 100 and span > 48 * 3600 and rate < 0.05 and whole:
        found.append(
            f"{arrival.size:,} requests over {span / 3600:,.0f} h is {rate:.3f} requests/s with whole-number "
            "arrivals: the times are probably milliseconds, not seconds (divide them by 1000)"
        )
    if raw.format_name == "mooncake" and arrival.size >= 100 and span > 0 and rate > 10_000:
        found.append(
            f"{rate:,.0f} requests/s: Mooncake timestamps are milliseconds; these look like microseconds "
            "or the trace is compressed"
        )
    gaps = np.diff(arrival)
    if gaps.size and float(gaps.max()) > 3600 and span < 40 * 86400:
        at = float(arrival[int(np.argmax(gaps))]) / 3600
        found.append(
            f"a gap of {float(gaps.max()) / 3600:.1f} h without requests at {at:.1f} h from the start: an "
            "outage, or several files concatenated"
        )
    prompt_mean, output_mean = float(raw.prompt.mean()), float(raw.output.mean())
    if output_mean > 4 * prompt_mean and output_mean > 500:
        found.append(
            f"mean output ({output_mean:,.0f} tokens) is over 4x the mean prompt ({prompt_mean:,.0f}): "
            "the prompt and output columns may be swapped"
        )
    if float(np.median(raw.prompt)) > 200_000:
        found.append("median prompt over 200,000 tokens: the column may hold characters or bytes, not tokens")
    return found
