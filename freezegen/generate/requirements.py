"""The library versions a generated script needs, by what its spec asks of it.

A script that imports a library too old for what it calls fails late and far from the cause:
``from_pretrained(dtype=...)`` on a transformers older than 4.56 is a TypeError inside the
model's constructor, peft 0.17 under transformers 5 an ImportError about a cache class. So every
script carries the minimums of the libraries its parts use (the REQUIREMENTS constant) and checks
them before it imports any of them (``parts/run/requirements``), naming the version found, the
one needed, why, and the freezegen extra that installs a good set.

The floors are the oldest versions the generated scripts were run with (benchmarks/RESULTS.md,
"Library floors", records the combinations tried and what failed below them); pyproject.toml's
extras declare the same floors (tests/generate/test_requirements.py keeps the two in step).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from freezegen.generate.recipe import quantized
from freezegen.spec.models import FILE_SOURCES, Spec


@dataclass(frozen=True)
class Requirement:
    """``distribution`` at ``minimum`` or newer, because of ``why``; ``extra`` is the freezegen
    extra that installs it. With ``given``, the requirement holds only when that other
    distribution is installed at that version or newer (an older peft imports fine beside an
    older transformers)."""

    distribution: str
    minimum: str
    why: str
    extra: str
    given: tuple[str, str] | None = None


HF = Requirement("transformers", "4.40", "Hugging Face models", "hf")
QUANTIZED_LOAD = Requirement(
    "transformers",
    "4.56",
    "loading a quantized base with from_pretrained(dtype=...)",
    "peft",
)
DATASETS = Requirement("datasets", "2.19", "reading records from files", "data")
TENSORBOARD = Requirement("tensorboard", "2.14", "logging.tensorboard", "tensorboard")
PEFT = Requirement("peft", "0.13", "LoRA adapters", "peft")
PEFT_UNDER_TRANSFORMERS_5 = Requirement(
    "peft",
    "0.18",
    "LoRA adapters under transformers 5 (peft 0.16 and 0.17 import a cache class it removed)",
    "peft",
    given=("transformers", "5"),
)
BITSANDBYTES = Requirement("bitsandbytes", "0.50", "quantization.library: bitsandbytes", "peft")
TORCHAO = Requirement("torchao", "0.16", "quantization.library: torchao", "torchao")
PEFT_OVER_TORCHAO = Requirement(
    "peft", "0.19", "LoRA over torchao's int8 weights (quantization.library: torchao)", "torchao"
)
TRANSFORMERS_FOR_TORCHAO = Requirement(
    "transformers", "4.57", "quantization.library: torchao", "torchao"
)


def requirements(spec: Spec) -> list[Requirement]:
    """Return what ``spec``'s script needs beyond torch, one requirement per distribution and
    condition (the strictest), in a stable order: none for a model.factory model on
    synthetic or text data without TensorBoard."""
    needed: list[Requirement] = []
    if spec.model.factory is None:
        needed.append(HF)
    if spec.data.source in FILE_SOURCES and spec.data.source != "text":
        needed.append(DATASETS)
    if spec.logging.tensorboard:
        needed.append(TENSORBOARD)
    if spec.adapter is not None:
        needed += [PEFT, PEFT_UNDER_TRANSFORMERS_5]
    if quantized(spec):
        needed.append(QUANTIZED_LOAD)
        assert spec.quantization is not None
        if spec.quantization.library == "torchao":
            needed += [TORCHAO, TRANSFORMERS_FOR_TORCHAO]
            if spec.adapter is not None:
                needed.append(PEFT_OVER_TORCHAO)
        else:
            needed.append(BITSANDBYTES)
    strictest: dict[tuple[str, tuple[str, str] | None], Requirement] = {}
    for requirement in needed:
        key = (requirement.distribution, requirement.given)
        held = strictest.get(key)
        if held is None or version_key(requirement.minimum) > version_key(held.minimum):
            strictest[key] = requirement
    # A conditional floor that an unconditional one already covers says nothing more.
    kept = [
        r
        for r in strictest.values()
        if r.given is None
        or (r.distribution, None) not in strictest
        or version_key(strictest[r.distribution, None].minimum) < version_key(r.minimum)
    ]
    return sorted(kept, key=lambda r: (r.distribution, r.given or ("", "")))


def version_key(version: str) -> tuple[int, ...]:
    """Return the numeric release of ``version`` ("2.13.0+cpu" -> (2, 13, 0)): its leading
    dot-separated integers, so that "0.19" < "0.19.1" < "0.20"; a pre-release counts as its
    release. The generated script carries the same rule (parts/run/requirements, ``release``)."""
    numbers = []
    for piece in version.split("."):
        digits = re.match(r"\d*", piece).group()  # type: ignore[union-attr]
        if not digits:
            break
        numbers.append(int(digits))
        if digits != piece:
            break
    return tuple(numbers)


def requirements_literal(spec: Spec) -> list[dict[str, object]]:
    """Return REQUIREMENTS as the script holds it: one dict per requirement."""
    return [
        {
            "distribution": r.distribution,
            "minimum": r.minimum,
            "why": r.why,
            "extra": r.extra,
            "given": None if r.given is None else list(r.given),
        }
        for r in requirements(spec)
    ]
