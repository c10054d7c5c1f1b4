"""Write the real-world corpus from git clones, at the commits the manifest records.

The scripts are third-party code: they never enter this repository. Get each repository the
manifest names into SOURCES, either as an ordinary clone or as a bare mirror:

    SOURCES/<owner>/<name>/.git   git clone https://github.com/<owner>/<name> SOURCES/<owner>/<name>
    SOURCES/<owner>/<name>        git clone --bare ... (a bare clone)
    SOURCES/<owner>+<name>/repo   a bare snapshot (the layout of this project's mirror tool)

(a shallow clone is fine when it holds the recorded commit: ``git fetch --depth 1 origin
COMMIT``). Nothing is checked out: each script is read with ``git show COMMIT:PATH`` and written
to CORPUS/<owner>/<name>/<path>, so one clone serves any commit. Then run realworld.py.

Run:
    python benchmarks/realworld_export.py benchmarks/realworld.manifest.json SOURCES CORPUS
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from realworld import ManifestError, Script, load_manifest, sha256_of


def git_dir(sources: Path, repository: str) -> Path:
    """The git directory holding ``repository`` under ``sources``; raises ManifestError when
    there is none, saying how to get it."""
    owner, name = repository.split("/", 1)
    for candidate in (
        sources / owner / name / ".git",
        sources / f"{owner}+{name}" / "repo",
        sources / owner / name,  # a bare clone: git clone --bare URL SOURCES/owner/name
    ):
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return candidate
    raise ManifestError(
        f"{repository}: no clone under {sources}; "
        f"git clone https://github.com/{repository} {sources / owner / name}"
    )


def read_at_commit(git: Path, script: Script) -> bytes:
    """The script's bytes at its recorded commit; raises ManifestError when the clone lacks
    the commit or the path."""
    proc = subprocess.run(
        ["git", f"--git-dir={git}", "show", f"{script.commit}:{script.path}"],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        error = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ManifestError(
            f"{script.name} at {script.commit[:12]}: {error[-1] if error else 'git show failed'} "
            f"(in {git}; git fetch origin {script.commit})"
        )
    return proc.stdout


def export(manifest: Path, sources: Path, corpus: Path) -> int:
    """Write every script of the manifest under ``corpus``; return how many were written.
    Raises ManifestError for a missing clone or commit, or a file whose hash is not the one
    recorded."""
    written = 0
    for script in load_manifest(manifest):
        data = read_at_commit(git_dir(sources, script.repository), script)
        if script.sha256 is not None and sha256_of(data) != script.sha256:
            raise ManifestError(f"{script.name} at {script.commit[:12]}: sha256 differs")
        target = script.location(corpus)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path, help="benchmarks/realworld.manifest.json")
    parser.add_argument("sources", type=Path, help="a folder of clones or bare mirrors")
    parser.add_argument("corpus", type=Path, help="where to write the scripts (outside the repo)")
    args = parser.parse_args(argv)
    try:
        written = export(args.manifest, args.sources, args.corpus)
    except ManifestError as exc:
        print(f"realworld_export: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {written} scripts under {args.corpus}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
