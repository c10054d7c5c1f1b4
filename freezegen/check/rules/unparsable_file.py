"""FG500: a file that could not be read, decoded or parsed (reported, and the run goes on)."""

from __future__ import annotations

from freezegen.check.rule import CheckRule


class UnparsableFile(CheckRule):
    """Emitted by the engine, not by a visitor; listed so it is documented.

    Only files that some selected rule could fire on are parsed (see ``CheckRule.needles``),
    so only those can raise it; it cannot be ignored or suppressed.
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
