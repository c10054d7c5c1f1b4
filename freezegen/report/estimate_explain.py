"""``--explain`` output: each term of the analytic estimate as ``name = formula = value``."""

from __future__ import annotations

from typing import Any

from freezegen.memory.explain import Explanation, size


def render_explanation(explanation: Explanation, title: str) -> str:
    """Return the explanation as plain text lines: one term a line, or a term of several parts
    as its total followed by one part a line."""
    est = explanation.estimate
    lines = [f"{title}: analytic peak {size(est.peak_bytes)}"]
    if explanation.phase:
        lines.append(f"the peak is reached during {explanation.phase}")
    lines += [f"it assumes: {note}" for note in explanation.assumptions]
    width = max(len(t.name) for t in explanation.terms)
    for term in explanation.terms:
        if not term.parts:
            lines.append(f"  {term.name:<{width}} = {term.formula} = {size(term.value)}")
            continue
        lines.append(f"  {term.name:<{width}} = {size(term.value)}, the sum of")
        for i, (text, value) in enumerate(term.parts):
            text = "  " + text.removeprefix("+ ") if i == 0 else text
            lines.append(f"  {'':<{width}}     {text} = {size(abs(value))}")
    lines.append(
        f"  {'peak':<{width}} = parameters + gradients + optimizer_states + activations + "
        f"temporaries = {size(est.peak_bytes)}"
    )
    lines.append(f"  {'required':<{width}} = peak + overhead = {size(est.required_bytes)}")
    lines.append("  (each tensor is rounded up to the allocator's 512-byte blocks)")
    return "\n".join(lines) + "\n"


def explanation_json(explanation: Explanation) -> list[dict[str, Any]]:
    """The terms as JSON items: ``{"term", "formula", "bytes"}``."""
    return [{"term": t.name, "formula": t.formula, "bytes": t.value} for t in explanation.terms]
