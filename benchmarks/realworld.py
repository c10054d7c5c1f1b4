"""check and codemod on real training scripts: does today's behaviour match the manifest?

The corpus is public training scripts (pytorch/examples, nanoGPT, minGPT, Accelerate's and
Fabric's examples, litgpt, torchtune, peft, ...) kept OUTSIDE the repository, in CORPUS_DIR/
<owner>/<name>/<path>; realworld_export.py writes it from git clones at the commits the
manifest records. For every script in MANIFEST this runs

    freezegen check --no-config SCRIPT
    freezegen codemod --precision bf16 --grad-accum-steps 4 --freeze '*.0.*' SCRIPT   (a diff)

in this process through freezegen.check.api and freezegen.codemod.api (what the CLI calls),
compares each outcome with the manifest's expectation (check: codes and lines; codemod: applied
with the transforms and a hash of the output, refused with the reasons and their lines, or
skipped), prints a table and the counts, and exits 1 on a mismatch. ``--update`` writes the
current behaviour back into MANIFEST (like ``--update-golden``), so a behaviour change is a
manifest diff in review.

The SUSPECT column is a grep-level heuristic, not a verdict: for a rewritten script it names
what the original already did that the applied transforms may duplicate (its own accumulation,
autocast, GradScaler, mixed_precision, freezing; an Accelerator built in two branches), and a
requested transform that was silently not applied. A person's verdict goes into the manifest's
``review`` field ("correct", or "wrong: why"); --update keeps it while the output hash stays.

Run:
    python benchmarks/realworld_export.py benchmarks/realworld.manifest.json SOURCES CORPUS
    python benchmarks/realworld.py benchmarks/realworld.manifest.json CORPUS [--update]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shlex
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from freezegen.codemod import CodemodResult, Message

CODEMOD_OPTIONS: dict[str, object] = {
    "precision": "bf16",
    "grad_accum_steps": 4,
    "freeze": ("*.0.*",),
}
"""The codemod run on every script (issue 10's command), as CodemodOptions fields."""
CHECK_FLAGS = ("--no-config",)
"""The corpus's own pyproject.toml files must not change what check reports."""
REQUESTED = ("freeze", "precision", "accumulation")
"""The transforms CODEMOD_OPTIONS ask for, by the names the codemod reports them under."""

SUSPECTS: tuple[tuple[str, str, str], ...] = (
    # (transform it may collide with, label, regular expression over the original source)
    ("accumulation", "own accumulation", r"(grad(ient)?_?accum\w*|accum\w*_steps)\b"),
    ("accumulation", "accelerator.accumulate", r"\.accumulate\("),
    ("precision", "own autocast", r"\bautocast\("),
    ("precision", "own GradScaler", r"\bGradScaler\("),
    ("precision", "mixed_precision", r"\bmixed_precision\b|\bprecision\s*="),
    ("freeze", "own freezing", r"requires_grad(_\(\s*False|\s*=\s*False)"),
    ("*", "Accelerator in two branches", r"Accelerator\([^\n]*\)\s+if\b[^\n]*\belse\b"),
    ("*", "Lightning Fabric", r"\bfabric\.backward\("),
)
"""Grep-level patterns for issue 10's classes of silently wrong rewrites (not a verdict)."""


@dataclass(frozen=True)
class Script:
    """One manifest entry: where the script comes from and what is expected of it."""

    repository: str
    commit: str
    path: str
    sha256: str | None
    expected: dict[str, object] | None
    review: str | None
    not_sensible: dict[str, str] | None = None
    """Requested transforms that make no sense for this script, each with a person's why
    (``{"accumulation": "full-batch: every step sees the whole graph"}``); the rest do."""

    @property
    def name(self) -> str:
        return f"{self.repository}/{self.path}"

    def location(self, corpus: Path) -> Path:
        """Where the exporter writes this script under ``corpus``."""
        return corpus / self.repository / self.path


class ManifestError(Exception):
    """The manifest or the corpus cannot drive a run (a usage error, exit 2)."""


def load_manifest(path: Path) -> list[Script]:
    """The manifest's scripts; raises ManifestError for a missing or malformed manifest."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["scripts"]
        return [
            Script(
                repository=e["repository"],
                commit=e["commit"],
                path=e["path"],
                sha256=e.get("sha256"),
                expected=e.get("expected"),
                review=e.get("review"),
                not_sensible=e.get("not_sensible"),
            )
            for e in entries
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ManifestError(f"{path}: not a realworld manifest ({exc!r})") from None


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def observe(files: list[Path]) -> list[dict[str, object]]:
    """What check and codemod do today with each file, in a form the manifest stores."""
    from freezegen.check import check_paths
    from freezegen.codemod import CodemodOptions, codemod_file, validate
    from freezegen.rules import Overrides

    findings: dict[str, list[str]] = {str(f): [] for f in files}
    for d in check_paths(files, Overrides(use_config=False)).diagnostics:
        findings[d.path].append(f"{d.code}:{d.line}")
    options = CodemodOptions(**CODEMOD_OPTIONS)  # type: ignore[arg-type]
    validate(options)
    observed = []
    for f in files:
        result = codemod_file(f, options)
        if result.changed:
            assert result.new_source is not None
            codemod: dict[str, object] = {
                "outcome": "applied",
                "transforms": list(result.applied),
                "output_sha256": sha256_of(result.new_source.encode("utf-8")),
            }
        elif result.skipped:
            codemod = {"outcome": "skipped"}
        elif result.problems:
            codemod = {"outcome": "refused", "reasons": [_said(m) for m in result.problems]}
        else:
            codemod = {"outcome": "unchanged"}
        if result.kept:  # the script's own mechanism, its value left to the user to set
            codemod["kept"] = list(result.kept)
            codemod["actions"] = [_said(m) for m in result.actions]
        if result.notes:
            codemod["notes"] = [_said(m) for m in result.notes]
        seen: dict[str, object] = {"check": findings[str(f)], "codemod": codemod}
        if codemod["outcome"] == "refused":
            seen["partial"] = _partial(codemod_file(f, options, partial=True))
        observed.append(seen)
    return observed


def _partial(result: CodemodResult) -> dict[str, object]:
    """What ``--partial`` does with a file the all-or-nothing run refuses."""
    part: dict[str, object] = {"applied": [], "not_applied": list(result.not_applied)}
    if result.changed:
        assert result.new_source is not None
        part["applied"] = list(result.applied)
        part["output_sha256"] = sha256_of(result.new_source.encode("utf-8"))
    if result.kept:
        part["kept"] = list(result.kept)
    return part


def codemod_flags() -> str:
    """CODEMOD_OPTIONS as the command line a user types."""
    words = []
    for name, value in CODEMOD_OPTIONS.items():
        for one in value if isinstance(value, tuple) else (value,):
            words += [f"--{name.replace('_', '-')}", str(one)]
    return shlex.join(words)


def _said(message: Message) -> str:
    """A codemod message without its path (the corpus folder is anyone's): 'LINE: text'."""
    return f"{message.line}: {message.text}"


def suspects(source: str, codemod: dict[str, object]) -> list[str]:
    """For an applied rewrite: what the original already does that the applied transforms may
    duplicate, and requested transforms that were not applied (grep-level; empty otherwise)."""
    if codemod.get("outcome") != "applied":
        return []
    applied = " ".join(codemod.get("transforms", []))  # type: ignore[arg-type]
    kept = " ".join(codemod.get("kept", []))  # type: ignore[arg-type]
    found = [
        label
        for transform, label, pattern in SUSPECTS
        if (transform == "*" or transform in applied) and re.search(pattern, source)
    ]
    found += [f"no {t}" for t in REQUESTED if t not in applied and t not in kept]
    return found


def summary(observed: dict[str, object]) -> tuple[str, str]:
    """The table's check and codemod cells for one outcome."""
    check = ",".join(observed["check"]) or "-"  # type: ignore[arg-type]
    codemod = observed["codemod"]
    assert isinstance(codemod, dict)
    outcome = codemod["outcome"]
    kept = "; kept: " + ", ".join(codemod["kept"]) if codemod.get("kept") else ""
    if outcome == "applied":
        return check, "applied: " + ", ".join(codemod["transforms"]) + kept
    if outcome == "refused":
        reasons = codemod["reasons"]
        lines = sorted({int(r.split(":", 1)[0]) for r in reasons})
        where = ",".join(str(n) if n else "file" for n in lines)
        return check, f"refused ({len(reasons)} reason{'s' * (len(reasons) > 1)}, at {where})"
    return check, outcome


def verdict_of(review: str | None) -> str:
    """The table's review cell: the verdict a review starts with ('correct', 'wrong'), or '-'."""
    return re.split(r"[^a-z]", review, maxsplit=1)[0] if review else "-"


def refusal_kind(reason: str) -> str:
    """A refusal's reason without its specifics (quoted code, numbers, assigned values), so
    that reasons group in the counts: 'LINE: cannot add X: why'."""
    text = reason.split(": ", 1)[1]
    text = re.sub(r"`[^`]*`", "`...`", text)
    text = re.sub(r"=\S+", "=...", text)
    return re.sub(r"\d+", "N", text)


def read_corpus(scripts: list[Script], corpus: Path) -> list[bytes]:
    """Every script's bytes; raises ManifestError for a script that is missing or is not the
    file the manifest recorded (a stale corpus is not a behaviour change)."""
    contents = []
    for script in scripts:
        path = script.location(corpus)
        if not path.is_file():
            raise ManifestError(f"{path}: missing; run realworld_export.py first")
        data = path.read_bytes()
        if script.sha256 is not None and sha256_of(data) != script.sha256:
            raise ManifestError(f"{path}: not the file at {script.commit[:12]}; export again")
        contents.append(data)
    return contents


def run(manifest: Path, corpus: Path, update: bool) -> int:
    """Observe every script, print the table and the counts; 1 on a mismatch (0 with update,
    which writes what was observed into the manifest)."""
    scripts = load_manifest(manifest)
    contents = read_corpus(scripts, corpus)
    start = time.perf_counter()
    observed = observe([s.location(corpus) for s in scripts])
    elapsed = time.perf_counter() - start
    rows, mismatched, suspected, reviews = [], [], [], []
    for script, data, seen in zip(scripts, contents, observed, strict=True):
        verdict = "match" if script.expected == seen else "MISMATCH"
        if script.expected is None:
            verdict = "new"
        elif verdict == "MISMATCH":
            mismatched.append((script, seen))
        flags = suspects(data.decode("utf-8", "replace"), seen["codemod"])  # type: ignore[arg-type]
        if flags:
            suspected.append(script.name)
        review = script.review if _review_holds(script, seen) else None
        if review:
            reviews.append((script.name, review))
        check, codemod = summary(seen)
        rows.append(
            (script.name, check, codemod, ", ".join(flags) or "-", verdict_of(review), verdict)
        )
    _print_table(("script", "check", "codemod", "suspect (grep)", "review", "vs manifest"), rows)
    print()
    print_counts(scripts, observed, corpus)
    print(f"check and codemod: {elapsed:.1f} s in this process")
    print(
        f"suspect rewrites (grep-level heuristic, not a verdict): {len(suspected)} of "
        f"{sum(o['codemod']['outcome'] == 'applied' for o in observed)} applied"  # type: ignore[index]
    )
    judged = Counter(row[4] for row in rows if row[2].startswith("applied"))
    print(
        f"applied rewrites judged in the manifest: correct {judged['correct']}, "
        f"wrong {judged['wrong']}, not judged {judged['-']}"
    )
    for name, review in reviews:
        print(f"    {name}: {review}")
    new = sum(row[-1] == "new" for row in rows)
    print(
        f"vs manifest: {len(rows) - len(mismatched) - new} match, "
        f"{len(mismatched)} MISMATCH, {new} new"
    )
    for script, seen in mismatched:
        print(
            f"MISMATCH {script.name}\n  expected {json.dumps(script.expected)}\n"
            f"  observed {json.dumps(seen)}"
        )
    if update:
        _write_back(manifest, scripts, contents, observed)
        print(f"updated {manifest}")
        return 0
    return 1 if mismatched else 0


def print_counts(scripts: list[Script], observed: list[dict[str, object]], corpus: Path) -> None:
    """The run's counts: scripts, findings by code, codemod outcomes, refusals by reason."""
    findings: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    full = partial_full = partial_some = by_own = 0
    kept: Counter[str] = Counter()
    for seen in observed:
        findings.update(f.split(":")[0] for f in seen["check"])  # type: ignore[attr-defined]
        codemod = seen["codemod"]
        assert isinstance(codemod, dict)
        outcomes[codemod["outcome"]] += 1
        refusals.update(refusal_kind(r) for r in codemod.get("reasons", []))
        applied = " ".join([*codemod.get("transforms", []), *codemod.get("kept", [])])
        whole = codemod["outcome"] == "applied" and all(t in applied for t in REQUESTED)
        full += whole
        if whole:
            kept.update(codemod.get("kept", []))
        by_own += codemod["outcome"] == "applied" and bool(codemod.get("kept"))
        part = seen.get("partial")
        if isinstance(part, dict) and part["applied"]:
            partial_some += 1
            partial_full += not part["not_applied"]
    repositories = len({s.repository for s in scripts})
    print(f"corpus: {corpus}, {len(scripts)} scripts from {repositories} repositories")
    by_code = ", ".join(f"{code} {n}" for code, n in sorted(findings.items())) or "none"
    with_findings = sum(bool(o["check"]) for o in observed)
    print(
        f"check {' '.join(CHECK_FLAGS)}: {len(observed)} checked, {sum(findings.values())} "
        f"findings in {with_findings} scripts; by code: {by_code}"
    )
    kinds = ("applied", "refused", "skipped", "unchanged")
    print(f"codemod {codemod_flags()}: " + ", ".join(f"{k} {outcomes[k]}" for k in kinds))
    kept_said = ", ".join(f"{name} {kept[name]}" for name in REQUESTED if kept[name])
    print(
        f"    applied with all of {', '.join(REQUESTED)}: {full}, of which {by_own} keep a "
        f"mechanism of the script's own whose value the user is told to set"
        + (f" ({kept_said})" if kept_said else "")
    )
    print(
        f"with --partial, of the {outcomes['refused']} refused: {partial_some} get the "
        f"transforms that can act ({partial_full} of them all three), "
        f"{outcomes['refused'] - partial_some} none"
    )
    left: Counter[str] = Counter()
    for seen in observed:
        part = seen.get("partial")
        if isinstance(part, dict):
            left.update(part["not_applied"])
    print(
        "    not applied under --partial, by transform: "
        + ", ".join(f"{name} {left[name]}" for name in REQUESTED)
    )
    served = [name for name, met in sensible_reach(scripts, observed) if met]
    excluded = sum(len(s.not_sensible or {}) for s in scripts)
    print(
        f"every transform that makes sense for the script (applied or kept, by the full run "
        f"or --partial): {len(served)} of {len(scripts)} "
        f"({100 * len(served) / max(1, len(scripts)):.0f}%); {excluded} requested transforms "
        "judged to make no sense, with why, in the manifest"
    )
    print(f"    refusal reasons ({sum(refusals.values())} in {outcomes['refused']} scripts):")
    for kind, n in refusals.most_common():
        print(f"      {n:3d}  {kind}")


def sensible_reach(
    scripts: list[Script], observed: list[dict[str, object]]
) -> list[tuple[str, bool]]:
    """Per script: whether every requested transform that makes sense for it (all of
    REQUESTED but its ``not_sensible``) is applied or kept, by the all-or-nothing run or, for
    a refused script, by ``--partial``."""
    out = []
    for script, seen in zip(scripts, observed, strict=True):
        wanted = {t for t in REQUESTED if t not in (script.not_sensible or {})}
        codemod = seen["codemod"]
        assert isinstance(codemod, dict)
        part = seen.get("partial")
        if codemod["outcome"] == "applied":
            got = {*codemod.get("transforms", []), *codemod.get("kept", [])}
        elif isinstance(part, dict):
            got = {*part["applied"], *part.get("kept", [])}  # type: ignore[misc]
        else:
            got = set(codemod.get("kept", []))
        out.append((script.name, wanted <= got))
    return out


def _review_holds(script: Script, seen: dict[str, object]) -> bool:
    """A review judges one output: it holds while the output's hash is the one reviewed."""
    expected = (script.expected or {}).get("codemod", {})
    observed = seen["codemod"]
    assert isinstance(expected, dict) and isinstance(observed, dict)
    return expected.get("output_sha256") == observed.get("output_sha256")


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, tuple("-" * w for w in widths), *rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def _write_back(
    manifest: Path, scripts: list[Script], contents: list[bytes], observed: list[dict[str, object]]
) -> None:
    """Rewrite the manifest's scripts with what was observed; other keys stay as they are."""
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["check"] = f"freezegen check {' '.join(CHECK_FLAGS)} SCRIPT"
    data["codemod"] = f"freezegen codemod {codemod_flags()} SCRIPT"
    entries = []
    for script, content, seen in zip(scripts, contents, observed, strict=True):
        entry: dict[str, object] = {
            "repository": script.repository,
            "commit": script.commit,
            "path": script.path,
            "sha256": sha256_of(content),
            "expected": seen,
        }
        if script.review and _review_holds(script, seen):
            entry["review"] = script.review
        if script.not_sensible:
            entry["not_sensible"] = script.not_sensible
        entries.append(entry)
    data["scripts"] = entries
    manifest.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path, help="benchmarks/realworld.manifest.json")
    parser.add_argument("corpus", type=Path, help="the folder realworld_export.py wrote")
    parser.add_argument(
        "--update", action="store_true", help="write today's behaviour into the manifest"
    )
    args = parser.parse_args(argv)
    try:
        return run(args.manifest, args.corpus, args.update)
    except ManifestError as exc:
        print(f"realworld: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
