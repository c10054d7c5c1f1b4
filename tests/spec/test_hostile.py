"""Hostile input is bounded: each gets a clear FG00x error, without blowing up in time or memory.

The time bound is a guard against runaway (quadratic or worse) work, not a speed target: it is
this process's CPU time, so other work on the machine does not move it, and it is set far above
what a bounded parse takes (well under a second). Time is measured without tracemalloc (it slows
allocation-heavy code several times over) and memory in a second, traced run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from freezegen.spec import LoadResult, load, load_text
from freezegen.spec._yaml import MAX_BYTES, MAX_DEPTH, MAX_NODES

REPO = Path(__file__).resolve().parents[2]
CPU_SECONDS = 10.0
PEAK_BYTES = 100 * 1024 * 1024


def bounded(run: Callable[[], LoadResult]) -> LoadResult:
    """Run ``run`` twice: once timed, once under tracemalloc; assert both bounds."""
    start = time.process_time()
    result = run()
    elapsed = time.process_time() - start
    assert elapsed < CPU_SECONDS, f"took {elapsed:.2f} s of CPU"
    tracemalloc.start()
    try:
        run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BYTES, f"peak {peak / 2**20:.0f} MiB"
    return result


def single(result: LoadResult, code: str) -> str:
    """The one diagnostic of ``result`` has ``code``, a sane position and a short message."""
    assert [d.code for d in result.diagnostics] == [code], result.diagnostics
    d = result.diagnostics[0]
    assert d.line >= 1 and d.col >= 1
    assert 10 < len(d.message) < 400, d.message
    assert result.spec is None
    return d.message


def from_text(text: str | bytes) -> LoadResult:
    return bounded(lambda: load_text(text, "hostile.yaml"))


def from_file(tmp_path: Path, data: bytes) -> tuple[Path, LoadResult]:
    path = tmp_path / "freezegen.yaml"
    path.write_bytes(data)
    return path, bounded(lambda: load(path))


def laughs(levels: int = 9, width: int = 9) -> str:
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        refs = ", ".join([f"*a{i - 1}"] * width)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


BILLION_LAUGHS = laughs()


# --- alias expansion -----------------------------------------------------------------------


def test_billion_laughs_is_refused() -> None:
    message = single(from_text(BILLION_LAUGHS), "FG007")
    assert str(MAX_NODES) in message and "alias" in message


def test_wide_alias_fan_out_in_a_flat_list_is_refused() -> None:
    big = "[" + ", ".join(["x"] * 1000) + "]"
    text = f"a: &a {big}\nb: [" + ", ".join(["*a"] * 100) + "]\n"
    single(from_text(text), "FG007")


def test_recursive_alias_is_refused() -> None:
    result = from_text("a: &x [*x]\n")
    d = result.diagnostics[0]
    assert "refers to itself" in single(result, "FG007")
    assert (d.line, d.col) == (1, 8)


def test_recursive_alias_in_a_mapping_and_via_merge_is_refused() -> None:
    assert "refers to itself" in single(from_text("a: &x {b: *x}\n"), "FG007")
    assert "refers to itself" in single(from_text("a: &x {<<: *x}\n"), "FG007")


# --- nesting -------------------------------------------------------------------------------


def test_deep_flow_nesting_100k_levels() -> None:
    text = "[" * 100_000 + "]" * 100_000
    message = single(from_text(text), "FG007")
    assert "nested deeper" in message


def test_deep_flow_nesting_unclosed() -> None:
    single(from_text("a: " + "{b: " * 100_000), "FG007")


def test_deep_block_nesting_1000_levels() -> None:
    text = "".join("  " * i + f"k{i}:\n" for i in range(1000))
    result = from_text(text)
    message = single(result, "FG007")
    assert str(MAX_DEPTH) in message
    d = result.diagnostics[0]
    assert d.line == MAX_DEPTH + 1  # the first mapping too deep, where it starts


def test_nesting_just_under_the_limit_is_fine() -> None:
    text = "x: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    result = from_text(text)
    assert all(d.code != "FG007" for d in result.diagnostics)


# --- size ----------------------------------------------------------------------------------


def test_five_mib_file_is_refused(tmp_path: Path) -> None:
    data = (b"# " + b"x" * 98 + b"\n") * (5 * 1024 * 1024 // 101)
    assert len(data) > MAX_BYTES
    _, result = from_file(tmp_path, data)
    assert "MiB" in single(result, "FG006")


@pytest.mark.parametrize("kind", [str, bytes])
def test_five_mib_of_text_handed_to_load_text_is_refused(kind: type) -> None:
    text = "# " + "x" * (5 * 1024 * 1024) + "\n"
    single(from_text(text if kind is str else text.encode()), "FG006")


def test_file_just_under_the_size_limit_with_a_flat_list_is_bounded(tmp_path: Path) -> None:
    # 4 MiB of "1," is 2M values: refused by count before any of them is kept
    body = b"1," * ((MAX_BYTES - 10) // 2)
    _, result = from_file(tmp_path, b"x: [" + body + b"1]\n")
    message = single(result, "FG007")
    assert str(MAX_NODES) in message


def test_many_keys_are_bounded() -> None:
    text = "".join(f"k{i}: {i}\n" for i in range(200_000))  # 2.8 MB
    single(from_text(text), "FG007")


def test_many_aliases_are_bounded() -> None:
    text = "a: &a 1\nb: [" + ",".join(["*a"] * 500_000) + "]\n"
    single(from_text(text), "FG007")


# --- bytes that are not UTF-8 YAML text ----------------------------------------------------


def test_binary_file_png_header(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 4096
    _, result = from_file(tmp_path, png)
    message = single(result, "FG006")
    assert "binary" in message
    d = result.diagnostics[0]
    assert (d.line, d.col) == (3, 1)  # the first NUL byte, after "\r\n\x1a\n"


def test_latin1_file_is_located(tmp_path: Path) -> None:
    data = "version: 1\nmodel: {preset: gpt2}\n# caf\xe9\n".encode("latin-1")
    _, result = from_file(tmp_path, data)
    message = single(result, "FG006")
    assert "UTF-8" in message and "0xe9" in message
    d = result.diagnostics[0]
    assert (d.line, d.col) == (3, 6)


def test_invalid_utf8_after_multibyte_characters_counts_characters(tmp_path: Path) -> None:
    data = "# héé ".encode() + b"\xff\n"
    _, result = from_file(tmp_path, data)
    d = result.diagnostics[0]
    assert (d.code, d.line, d.col) == ("FG006", 1, 7)


@pytest.mark.parametrize(
    ("char", "col"), [("\x01", 6), ("\x1b", 6), ("\x7f", 6), ("\x9f", 6), ("\ufffe", 6)]
)
def test_control_characters(char: str, col: int) -> None:
    result = from_text(f"a: 1\nb: xx{char}yy\n")
    message = single(result, "FG001")
    d = result.diagnostics[0]
    assert (d.line, d.col) == (2, col)
    assert "not allowed" in message


def test_control_characters_in_a_file(tmp_path: Path) -> None:
    _, result = from_file(tmp_path, b"version: 1\n\x0c\x0b\x08\n")
    assert single(result, "FG001")


# --- tags ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/object:os.system {}\n",
        "a: !!python/object/apply:os.system ['echo pwned']\n",
        "a: !!python/name:os.system\n",
        "!!python/object:os.system\nversion: 1\n",
        "a: !custom 1\n",
        "a: !<tag:example.com,2024:x> 1\n",
        "a: !!binary aGVsbG8=\n",
        "a: !!set {x}\n",
        "a: !!timestamp 2024-01-01\n",
    ],
)
def test_unknown_tags_are_refused(text: str) -> None:
    message = single(from_text(text), "FG004")
    assert "tag" in message and "not supported" in message


# --- long lines and keys -------------------------------------------------------------------


def test_very_long_value_is_reported_with_a_short_message() -> None:
    text = (
        "version: 1\nmodel: {preset: gpt2}\nbatch: {micro_batch_size: 2, seq_len: 128}\n"
        "precision: " + "x" * 3_000_000 + "\n"
    )
    result = from_text(text)
    single(result, "FG004")
    assert (result.diagnostics[0].line, result.diagnostics[0].col) == (4, 12)


def test_very_long_plain_key_is_a_syntax_error_with_a_hint() -> None:
    result = from_text("k" * 100_000 + ": 1\n")
    assert "1024" in single(result, "FG001")


def test_very_long_quoted_key_is_a_syntax_error_with_a_hint() -> None:
    assert "1024" in single(from_text('"' + "k" * 100_000 + '": 1\n'), "FG001")


def test_long_unknown_key_is_shortened_in_the_message() -> None:
    text = (
        "version: 1\nmodel: {preset: gpt2}\nbatch: {micro_batch_size: 2, seq_len: 128}\n"
        + "k" * 1000
        + ": 1\n"
    )
    message = single(from_text(text), "FG002")
    assert "\u2026" in message


def test_long_explicit_key_is_bounded() -> None:
    text = "? " + "k" * 2_000_000 + "\n: 1\n"
    result = from_text(text)
    assert all(len(d.message) < 400 for d in result.diagnostics)


def test_very_long_anchor_name() -> None:
    result = from_text("a: *" + "n" * 1_000_000 + "\n")
    assert "unknown alias" in single(result, "FG001")


def test_huge_integer() -> None:
    text = (
        "version: 1\nmodel: {preset: gpt2}\nbatch: {micro_batch_size: 2, seq_len: "
        + "7" * 100_000
        + "}\n"
    )
    single(from_text(text), "FG004")


# --- through the real command line ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("bomb", BILLION_LAUGHS.encode(), "FG007"),
        ("binary", b"\x89PNG\r\n\x1a\n" + b"\x00" * 256, "FG006"),
        ("deep", b"[" * 100_000, "FG007"),
    ],
)
def test_cli_reports_hostile_files_without_a_traceback(
    tmp_path: Path, name: str, data: bytes, code: str
) -> None:
    path = tmp_path / f"{name}.freezegen.yaml"
    path.write_bytes(data)
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("FREEZEGEN_DEBUG", None)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "freezegen", "lint", str(path), "--no-config"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )
    assert time.perf_counter() - start < 30
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert code in proc.stdout
