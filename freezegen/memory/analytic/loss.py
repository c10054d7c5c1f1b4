"""What the head and the language-model loss keep: the final norm / head transform, the
trainable embeddings' stem, and the loss path (logits, fp32 log-softmax and their gradients:
``b*s*vocab``), which often dominates an LLM's peak."""

from __future__ import annotations

from freezegen.arch.params import EMBEDDINGS, Param
from freezegen.memory.analytic.operators import dropout_p, head_per_token, stem_per_token
from freezegen.memory.analytic.parts import Part, matrix, rounded
from freezegen.spec.models import Spec
from freezegen.spec.precision import Precision
from freezegen.spec.presets import Architecture


def saved_outside_blocks(
    spec: Spec, arch: Architecture, trainable: list[Param], precision: Precision, tokens: int
) -> tuple[Part, list[Part]]:
    """What is saved outside the blocks: (the final norm / head transform, the rest: the
    trainable embeddings' stem and, under autocast, the low-precision copy of the output
    projection)."""
    per_token = head_per_token(spec, arch, precision, trainable)
    head = Part(
        "final norm / head saved",
        rounded(per_token * tokens),
        ((tokens, "tokens"), (per_token, "B/token")),
    )
    stem = embeddings_saved(spec, arch, trainable, precision, tokens)
    if precision.autocast and spec.model.head == "causal-lm":
        stem.append(
            Part(
                "16-bit copy of the output projection (autocast)",
                rounded(arch.vocab_size * arch.hidden_size * 2),
                matrix(arch, 2),
            )
        )
    return head, stem


def embeddings_saved(
    spec: Spec, arch: Architecture, trainable: list[Param], precision: Precision, tokens: int
) -> list[Part]:
    """What trainable embeddings save for their backward (nothing when they are frozen): the
    part of the stem alive from the start of the forward on."""
    if not any(p.block is None and p.kind == EMBEDDINGS for p in trainable):
        return []
    per_token = stem_per_token(arch, precision, dropout_p(spec, arch) > 0)
    return [
        Part(
            "embeddings saved",
            rounded(per_token * tokens),
            ((tokens, "tokens"), (per_token, "B/token")),
        )
    ]


def loss_parts(
    spec: Spec, arch: Architecture, tokens: int, precision: Precision
) -> tuple[list[Part], list[Part], list[Part]]:
    """Return the parts of the output head and loss: (its forward peak, the log-softmax it
    saves for the backward, its backward peak)."""
    if spec.model.head == "sequence-classification":
        return [], [], []
    logits = tokens * arch.vocab_size
    low = 2 if precision.autocast else precision.param_bytes

    def each(nbytes: int) -> tuple[tuple[float, str], ...]:
        return ((tokens, "tokens"), (arch.vocab_size, "vocab"), (nbytes, "B"))

    # logits in the compute dtype, an fp32 copy (unless already fp32), fp32 log-softmax.
    fwd = [Part("logits", rounded(logits * low), each(low))]
    if low != 4:
        fwd.append(Part("their fp32 copy", rounded(logits * 4), each(4)))
    fwd.append(Part("fp32 log-softmax", rounded(logits * 4), each(4)))
    saved = [Part("saved log-softmax", rounded(logits * 4), each(4))]
    # backward: the gradient of the log-softmax and the logits' fp32 gradient (the saved
    # log-softmax output itself is counted with the activations).
    grads = 2 * rounded(logits * 4)
    bwd = [Part("log-softmax and logits gradients", grads, ((2, "tensors"), *each(4)))]
    return fwd, saved, bwd
