"""Models named by their Hugging Face Hub id (``model.pretrained: org/name``).

``lint`` must run offline and start fast, so the local cache is read here by its documented
layout, without importing ``huggingface_hub``: ``<cache>/models--org--name/refs/main`` holds the
commit of the snapshot ``<cache>/models--org--name/snapshots/<commit>/`` whose files
(``config.json``, weights, tokenizer) are what ``from_pretrained`` loads. The cache folder is the
one ``huggingface_hub`` uses: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
``~/.cache/huggingface/hub`` (``XDG_CACHE_HOME`` replacing ``~/.cache``).

:func:`fetch_config` is for commands that may use the network (estimate, generate): it downloads
the config through ``huggingface_hub`` when the cache lacks it and the Hub is reachable.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from freezegen._io import ReadRefused, read_bytes

__all__ = ["CachedModel", "NotCached", "download_command", "fetch_config", "find_cached"]

# What the Hub accepts as a repository id: "name" or "org/name", letters, digits, - _ .
REPO_ID_PATTERN = r"^[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?$"
_REPO_ID = re.compile(REPO_ID_PATTERN)
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class NotCached(Exception):
    """The model is not in the local Hugging Face cache; the message says how to get it."""


@dataclass(frozen=True)
class CachedModel:
    """One snapshot of a Hub model in the local cache."""

    repo_id: str
    snapshot: Path

    @property
    def config(self) -> Path:
        return self.snapshot / "config.json"


def hub_cache_dir() -> Path:
    """Return the folder ``huggingface_hub`` caches models in (it need not exist)."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        value = os.environ.get(name)
        if value:
            return Path(value).expanduser()
    home = os.environ.get("HF_HOME")
    if home:
        return Path(home).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def download_command(repo_id: str) -> str:
    """The command that puts ``repo_id`` into the cache (config, weights and tokenizer)."""
    return f"hf download {repo_id}"


def find_cached(repo_id: str, revision: str = "main") -> CachedModel:
    """Return the cached snapshot of ``repo_id`` at ``revision`` (a branch, tag or commit).

    Reads only the file system. Raises :class:`NotCached` when the cache has no snapshot with a
    ``config.json`` for it, saying where it looked and which command downloads it.
    """
    if not _REPO_ID.match(repo_id):
        raise NotCached(f"{repo_id!r} is not a Hugging Face model id like 'org/name'")
    cache = hub_cache_dir()
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = revision if _COMMIT.match(revision) else _read_ref(repo / "refs" / revision)
    if commit is not None:
        snapshot = repo / "snapshots" / commit
        if (snapshot / "config.json").is_file():
            return CachedModel(repo_id, snapshot)
    raise NotCached(
        f"{repo_id} is not in the Hugging Face cache ({cache}); download it with "
        f"`{download_command(repo_id)}` (or set HF_HUB_CACHE / HF_HOME to the cache that has it)"
    )


def fetch_config(repo_id: str, revision: str = "main") -> CachedModel:
    """Return the cached snapshot of ``repo_id``, downloading its ``config.json`` first when
    the cache lacks it and the Hub is reachable (not with ``HF_HUB_OFFLINE=1``).

    Raises :class:`NotCached` when it is neither cached nor downloadable; the message says why.
    """
    try:
        return find_cached(repo_id, revision)
    except NotCached as missing:
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            raise
        try:
            from huggingface_hub import hf_hub_download
        except ImportError:
            raise missing from None
        try:
            hf_hub_download(repo_id, "config.json", revision=revision, cache_dir=hub_cache_dir())
        except Exception as exc:  # any network or Hub failure means: not available here
            reason = f"the Hub was not reachable: {type(exc).__name__}"
            raise NotCached(f"{missing} ({reason})") from None
        return find_cached(repo_id, revision)


def _read_ref(path: Path) -> str | None:
    try:
        # a ref holds one commit hash; a FIFO or a huge file in the cache must not stall us
        commit = read_bytes(path, 64).decode("ascii").strip()
    except (ReadRefused, UnicodeDecodeError):
        return None
    return commit if _COMMIT.match(commit) else None
