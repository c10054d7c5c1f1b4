"""FG500: a file that could not be read, decoded or parsed (reported, and the run goes on)."""

from __future__ import annotations

from freezegen.check.rule import CheckRule


class UnparsableFile(CheckRule):
    """Emitted by the engine, not by a visitor; listed so it is documented.

    Every file is decoded and parsed by CPython first, so a file that is not Python (binary,
    undeclared latin-1, a syntax error) is reported even when no rule would look at it; files
    past the limits of :mod:`freezegen.check.gate` (size, nesting, syntax nodes) and, with
    ``-j N``, a file whose worker process died are reported too. It cannot be ignored or
    suppressed.
    """

    code = "FG500"
    name = "unparsable-file"
    summary = "The file could not be read, decoded as its declared encoding, or parsed."
    always_on = True
    valid = ("import torch\n\nx = torch.ones(2, requires_grad=True)\nstate = torch.load(path)\n",)
    invalid = (
        "import torch\n\ndef train(:\n    state = torch.load(path)\n",
        "import torch\n\nloss = (torch.ones(2)\nstate = torch.load(path)\n",
    )
