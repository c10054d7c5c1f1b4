"""The parameters a Hugging Face model of a known family has, without importing torch.

Names follow the ``named_parameters()`` of the transformers classes freezegen builds
(GPT2LMHeadModel, BertLMHeadModel / BertForSequenceClassification, LlamaForCausalLM and its
mistral/qwen2 siblings, and their ...ForSequenceClassification), so the freeze globs a user
writes are checked against the names they will really meet. A tied output head is not a
parameter of its own: it is the token embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

from freezegen.spec.presets import Architecture

EMBEDDINGS, ATTENTION, MLP, NORM, HEAD = "embeddings", "attention", "mlp", "norm", "head"


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter tensor: its name, shape, module kind and block index (None outside blocks)."""

    name: str
    shape: tuple[int, ...]
    kind: str
    block: int | None = None

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def parameter_table(
    arch: Architecture, head: str = "causal-lm", num_labels: int = 2
) -> list[Param]:
    """Return every trainable-capable parameter of ``arch`` with ``head``, in model order."""
    build = {"gpt2": _gpt2, "bert": _bert, "llama": _llama}[arch.family]
    return build(arch, head == "sequence-classification", num_labels)


def _linear(
    name: str, out: int, inp: int, kind: str, block: int | None, bias: bool = True
) -> list[Param]:
    params = [Param(f"{name}.weight", (out, inp), kind, block)]
    if bias:
        params.append(Param(f"{name}.bias", (out,), kind, block))
    return params


def _norm(name: str, size: int, block: int | None, bias: bool = True) -> list[Param]:
    params = [Param(f"{name}.weight", (size,), NORM, block)]
    if bias:
        params.append(Param(f"{name}.bias", (size,), NORM, block))
    return params


def _gpt2(a: Architecture, classify: bool, labels: int) -> list[Param]:
    h, f = a.hidden_size, a.intermediate_size
    out = [
        Param("transformer.wte.weight", (a.vocab_size, h), EMBEDDINGS),
        Param("transformer.wpe.weight", (a.max_positions, h), EMBEDDINGS),
    ]
    for i in range(a.num_layers):
        p = f"transformer.h.{i}"
        # GPT-2 uses Conv1D: weights are stored (in, out).
        out += _norm(f"{p}.ln_1", h, i)
        out += [
            Param(f"{p}.attn.c_attn.weight", (h, 3 * h), ATTENTION, i),
            Param(f"{p}.attn.c_attn.bias", (3 * h,), ATTENTION, i),
            Param(f"{p}.attn.c_proj.weight", (h, h), ATTENTION, i),
            Param(f"{p}.attn.c_proj.bias", (h,), ATTENTION, i),
        ]
        out += _norm(f"{p}.ln_2", h, i)
        out += [
            Param(f"{p}.mlp.c_fc.weight", (h, f), MLP, i),
            Param(f"{p}.mlp.c_fc.bias", (f,), MLP, i),
            Param(f"{p}.mlp.c_proj.weight", (f, h), MLP, i),
            Param(f"{p}.mlp.c_proj.bias", (h,), MLP, i),
        ]
    out += _norm("transformer.ln_f", h, None)
    if classify:
        out.append(Param("score.weight", (labels, h), HEAD))
    elif not a.tie_word_embeddings:
        out.append(Param("lm_head.weight", (a.vocab_size, h), HEAD))
    return out


def _bert(a: Architecture, classify: bool, labels: int) -> list[Param]:
    h, f = a.hidden_size, a.intermediate_size
    e = "bert.embeddings"
    out = [
        Param(f"{e}.word_embeddings.weight", (a.vocab_size, h), EMBEDDINGS),
        Param(f"{e}.position_embeddings.weight", (a.max_positions, h), EMBEDDINGS),
        Param(f"{e}.token_type_embeddings.weight", (a.type_vocab_size, h), EMBEDDINGS),
        Param(f"{e}.LayerNorm.weight", (h,), EMBEDDINGS),
        Param(f"{e}.LayerNorm.bias", (h,), EMBEDDINGS),
    ]
    for i in range(a.num_layers):
        p = f"bert.encoder.layer.{i}"
        for proj in ("query", "key", "value"):
            out += _linear(f"{p}.attention.self.{proj}", h, h, ATTENTION, i)
        out += _linear(f"{p}.attention.output.dense", h, h, ATTENTION, i)
        out += _norm(f"{p}.attention.output.LayerNorm", h, i)
        out += _linear(f"{p}.intermediate.dense", f, h, MLP, i)
        out += _linear(f"{p}.output.dense", h, f, MLP, i)
        out += _norm(f"{p}.output.LayerNorm", h, i)
    if classify:
        out += _linear("bert.pooler.dense", h, h, HEAD, None)
        out += _linear("classifier", labels, h, HEAD, None)
    else:
        # A module's own parameters come before its children's: the output bias is first.
        t = "cls.predictions"
        out.append(Param(f"{t}.bias", (a.vocab_size,), HEAD))
        out += _linear(f"{t}.transform.dense", h, h, HEAD, None)
        out += [
            Param(f"{t}.transform.LayerNorm.weight", (h,), HEAD),
            Param(f"{t}.transform.LayerNorm.bias", (h,), HEAD),
        ]
        if not a.tie_word_embeddings:
            # Untied (transformers 5): the decoder keeps its own weight and bias.
            out += _linear(f"{t}.decoder", a.vocab_size, h, HEAD, None)
    return out


def _llama(a: Architecture, classify: bool, labels: int) -> list[Param]:
    h, f, d = a.hidden_size, a.intermediate_size, a.head_dim
    kv = a.kv_heads * d
    # llama's attention_bias puts a bias on all four projections; qwen2's is on q/k/v only.
    o_bias = a.qkv_bias and a.model_type == "llama"
    out = [Param("model.embed_tokens.weight", (a.vocab_size, h), EMBEDDINGS)]
    for i in range(a.num_layers):
        p = f"model.layers.{i}"
        # Decoder layers register self_attn, mlp, then the two norms.
        out += _linear(f"{p}.self_attn.q_proj", a.num_heads * d, h, ATTENTION, i, a.qkv_bias)
        out += _linear(f"{p}.self_attn.k_proj", kv, h, ATTENTION, i, a.qkv_bias)
        out += _linear(f"{p}.self_attn.v_proj", kv, h, ATTENTION, i, a.qkv_bias)
        out += _linear(f"{p}.self_attn.o_proj", h, a.num_heads * d, ATTENTION, i, o_bias)
        out += _linear(f"{p}.mlp.gate_proj", f, h, MLP, i, bias=False)
        out += _linear(f"{p}.mlp.up_proj", f, h, MLP, i, bias=False)
        out += _linear(f"{p}.mlp.down_proj", h, f, MLP, i, bias=False)
        out += _norm(f"{p}.input_layernorm", h, i, bias=False)
        out += _norm(f"{p}.post_attention_layernorm", h, i, bias=False)
    out += _norm("model.norm", h, None, bias=False)
    if classify:
        out.append(Param("score.weight", (labels, h), HEAD))
    elif not a.tie_word_embeddings:
        out.append(Param("lm_head.weight", (a.vocab_size, h), HEAD))
    return out
