"""The analytic estimator against the traced one, at reduced dimensions.

Target: within 5% of the traced peak. Cases that do not meet it yet are marked xfail with the
measured error and the term responsible, never by loosening the tolerance.

The matrix covers every family (gpt2, bert, llama, mistral, qwen2, qwen3, phi3, gemma3,
olmo2, mixtral, granite), both heads, each freeze selector, each precision, both attention
implementations, the checkpointing modes, the optimizers and their implementations, gradient
accumulation, DDP and FSDP (world sizes 2 and 8). Dimensions are small (conftest.py) so the
whole matrix traces in seconds.
"""

from pathlib import Path

import pytest

from freezegen.memory import estimate
from freezegen.memory.analytic import analyse

GOLDEN = Path(__file__).parent / "golden" / "accuracy"

TOLERANCE = 0.05
B = "batch: {micro_batch_size: 8, seq_len: 256}"
SMALL = "batch: {micro_batch_size: 4, seq_len: 128}"
TINY = "batch: {micro_batch_size: 1, seq_len: 64}"
FEW = "batch: {micro_batch_size: 1, seq_len: 16}"
FSDP2 = "distributed: {strategy: fsdp}\nhardware: {gpus_per_node: 2, memory_gib: 80}"
NF4 = "quantization: {weights: nf4, double_quant: true, compute: bf16}"
INT8 = "quantization: {weights: int8}"
TORCHAO = "quantization: {weights: int8, library: torchao}"
FSDP8 = "distributed: {strategy: fsdp}\nhardware: {gpus_per_node: 8, memory_gib: 80}"
PACKED = "data: {source: jsonl, path: t.jsonl, tokenizer: tok, packing: true}"


def xfail(reason):
    return pytest.mark.xfail(reason=reason, strict=True)


def case(family, body="", model_extra="", *, id, marks=()):
    if "batch:" not in body:
        body = f"{body}\n{B}" if body else B
    return pytest.param(family, body, model_extra, id=id, marks=marks)


CASES = [
    # gpt2: tied head, LayerNorm, tanh-GELU, dropout 0.1
    case("gpt2", id="gpt2-fp32-sdpa"),
    case("gpt2", model_extra="attention: eager", id="gpt2-fp32-eager"),
    case("gpt2", "precision: bf16", id="gpt2-bf16"),
    case("gpt2", f"precision: fp16\n{SMALL}", "attention: eager", id="gpt2-fp16-eager"),
    case("gpt2", "precision: bf16-pure", id="gpt2-bf16-pure"),
    case("gpt2", "", "dropout: 0.0", id="gpt2-no-dropout"),
    case("gpt2", "freeze: {embeddings: true, layers: {first: 2}}", id="gpt2-freeze-first"),
    case("gpt2", "freeze: {layers: {last: 2}}", id="gpt2-freeze-last"),
    case("gpt2", "freeze: {embeddings: true, layers: '0-2'}", id="gpt2-freeze-range"),
    case("gpt2", "freeze: {modules: [attention]}", id="gpt2-freeze-modules"),
    case("gpt2", "freeze: {patterns: ['*.mlp.*']}", id="gpt2-freeze-patterns"),
    case(
        "gpt2",
        "freeze: {embeddings: true, layers: '0-3', except: ['*.ln_*']}",
        id="gpt2-freeze-except",
    ),
    case("gpt2", "", "head: sequence-classification", id="gpt2-seq-cls"),
    case("gpt2", "activation_checkpointing: true", id="gpt2-ckpt-all"),
    case("gpt2", "activation_checkpointing: {layers: every-2}", id="gpt2-ckpt-every-2"),
    # Autocast and checkpointing: a recomputed block's peak is its MLP backward, where
    # tanh-GELU (promoted to fp32 by pow) builds fp32 gradients.
    case("gpt2", "precision: bf16\nactivation_checkpointing: true", id="gpt2-bf16-ckpt-all"),
    case(
        "gpt2",
        "precision: fp16\nactivation_checkpointing: {layers: every-2}",
        id="gpt2-fp16-ckpt-every-2",
    ),
    case("gpt2", f"optimizer: {{name: sgd}}\n{TINY}", id="gpt2-sgd-small-batch"),
    case("gpt2", TINY, id="gpt2-adamw-optimizer-bound"),
    case(
        "gpt2",
        f"optimizer: {{name: adam, weight_decay: 0.01}}\n{TINY}",
        id="gpt2-adam-l2-foreach",
    ),
    case(
        "gpt2",
        f"distributed: {{strategy: ddp}}\nhardware: {{gpus_per_node: 2, memory_gib: 80}}\n{SMALL}",
        id="gpt2-ddp",
    ),
    case(
        "gpt2",
        f"optimizer: {{name: sgd, momentum: 0.9, implementation: fused}}\n{TINY}",
        id="gpt2-sgd-momentum-fused",
    ),
    # gpt2 with tie_word_embeddings false: lm_head is a parameter of its own, and no tied
    # gradient is summed at the end of the backward
    case("gpt2-untied", f"optimizer: {{name: sgd}}\n{TINY}", id="gpt2-untied-sgd-small-batch"),
    case("gpt2-untied", TINY, id="gpt2-untied-adamw"),
    # bert: post-LN, exact GELU, decoder LM head / pooler classifier
    case("bert", id="bert-fp32-sdpa"),
    case("bert", "", "head: sequence-classification", id="bert-seq-cls"),
    case("bert", "precision: bf16", id="bert-bf16"),
    case("bert", "precision: bf16-pure", "attention: eager", id="bert-bf16-pure-eager"),
    case("bert", "freeze: {embeddings: true, layers: {first: 2}}", id="bert-freeze-first"),
    case("bert", "activation_checkpointing: {layers: '0-1'}", id="bert-ckpt-range"),
    case(
        "bert", f"precision: fp16\n{SMALL}", "head: sequence-classification", id="bert-seq-cls-fp16"
    ),
    case(
        "bert",
        f"precision: bf16\nactivation_checkpointing: {{layers: every-2}}\n{SMALL}",
        "attention: eager",
        id="bert-bf16-eager-ckpt-every-2",
    ),
    case("bert", f"optimizer: {{name: adam, implementation: loop}}\n{TINY}", id="bert-adam-loop"),
    case("bert-untied", f"optimizer: {{name: sgd}}\n{TINY}", id="bert-untied-sgd-small-batch"),
    case("bert-untied", TINY, id="bert-untied-adamw"),
    # llama: RMSNorm, SwiGLU, rotary, GQA, untied head
    case("llama", id="llama-fp32-sdpa"),
    case("llama", "precision: bf16", id="llama-bf16"),
    case("llama", "precision: bf16-pure", id="llama-bf16-pure"),
    case("llama", "", "attention: eager", id="llama-fp32-eager"),
    case("llama", "precision: bf16", "attention: eager", id="llama-bf16-eager"),
    case(
        "llama",
        f"precision: fp16\nactivation_checkpointing: true\n{SMALL}",
        "attention: eager",
        id="llama-fp16-eager-ckpt",
    ),
    case("llama", "freeze: {embeddings: true, layers: {first: 2}}", id="llama-freeze-first"),
    case("llama", "freeze: {layers: {last: 1}}", id="llama-freeze-last"),
    case("llama", "freeze: {modules: [mlp]}", id="llama-freeze-modules"),
    case("llama", "activation_checkpointing: true", id="llama-ckpt-all"),
    case(
        "llama",
        "precision: bf16\nactivation_checkpointing: {layers: every-2}",
        id="llama-bf16-ckpt-every-2",
    ),
    case("llama", "precision: bf16\nactivation_checkpointing: true", id="llama-bf16-ckpt-all"),
    case(
        "llama",
        "precision: fp16\nactivation_checkpointing: {layers: every-2}",
        id="llama-fp16-ckpt-every-2",
    ),
    case("llama", "activation_checkpointing: {layers: '2-3'}", id="llama-ckpt-range"),
    case("llama", f"optimizer: {{implementation: fused}}\n{TINY}", id="llama-fused"),
    case("llama", f"optimizer: {{implementation: loop}}\n{TINY}", id="llama-adamw-loop"),
    case(
        "llama",
        f"optimizer: {{name: sgd, momentum: 0.9, weight_decay: 0.01}}\n{TINY}",
        id="llama-sgd-momentum-foreach",
    ),
    case(
        "llama",
        "optimizer: {name: sgd, momentum: 0.9, weight_decay: 0.01, implementation: loop}\n" + TINY,
        id="llama-sgd-momentum-loop",
    ),
    case("llama", "precision: bf16", "head: sequence-classification", id="llama-seq-cls-bf16"),
    case(
        "llama",
        "precision: bf16\ndistributed: {strategy: ddp}\n"
        f"hardware: {{gpus_per_node: 4, memory_gib: 80}}\n{SMALL}",
        id="llama-bf16-ddp",
    ),
    # mistral and qwen2 share the llama layout; qwen2 ties its head and has q/k/v biases
    case("mistral", "precision: bf16", id="mistral-bf16"),
    case("mistral", "", "head: sequence-classification", id="mistral-seq-cls"),
    case(
        "mistral",
        f"precision: bf16\n{SMALL}",
        "attention: eager, dropout: 0.1",
        id="mistral-bf16-eager-attention-dropout",
    ),
    case("qwen2", id="qwen2-fp32-tied"),
    case("qwen2", "freeze: {embeddings: true, layers: {first: 1}}", id="qwen2-freeze-tied-head"),
    case(
        "qwen2",
        f"precision: bf16-pure\nactivation_checkpointing: true\n{SMALL}",
        id="qwen2-bf16-pure-ckpt",
    ),
    case(
        "qwen2",
        "precision: bf16\nbatch: {micro_batch_size: 4, seq_len: 128, grad_accum_steps: 2}",
        id="qwen2-bf16-grad-accum",
    ),
    # qwen3: head_dim 48 (q and the output 384 wide for hidden 256), per-head q/k RMSNorms
    case("qwen3", id="qwen3-fp32-tied"),
    case("qwen3", "precision: bf16", id="qwen3-bf16"),
    case("qwen3", "precision: bf16-pure", id="qwen3-bf16-pure"),
    case("qwen3", f"precision: bf16\n{SMALL}", "attention: eager", id="qwen3-bf16-eager"),
    case("qwen3", "freeze: {embeddings: true, layers: {first: 2}}", id="qwen3-freeze-first"),
    case("qwen3", "precision: bf16\nactivation_checkpointing: true", id="qwen3-bf16-ckpt-all"),
    # phi3: fused qkv and gate_up projections, residual and attention dropout 0.1
    case("phi3", "", "dropout: 0.0", id="phi3-fp32-no-dropout"),
    case(
        "phi3",
        id="phi3-fp32-sdpa-dropout",
        marks=xfail(
            "-10.3%: fp32 grouped-query sdpa runs the math kernel; traced on CPU its attention "
            "dropout saves a fp32 noise tensor (4 B per probability) where CUDA, and the "
            "analytic model, keep a bool mask (traced.py _sdpa says so): the trace's term"
        ),
    ),
    case("phi3", "", "attention: eager", id="phi3-fp32-eager-dropout"),
    case("phi3", "precision: bf16", id="phi3-bf16-dropout"),
    case("phi3", "precision: bf16-pure", "dropout: 0.0", id="phi3-bf16-pure"),
    case(
        "phi3",
        "freeze: {embeddings: true, layers: {first: 2}}",
        "dropout: 0.0",
        id="phi3-freeze-first",
    ),
    case(
        "phi3",
        "precision: bf16\nactivation_checkpointing: true",
        "dropout: 0.0",
        id="phi3-bf16-ckpt-all",
    ),
    # gemma3: head_dim 48, four Gemma RMSNorms and per-head q/k norms, GeGLU, tied head
    case("gemma3", id="gemma3-fp32-tied"),
    case("gemma3", "precision: bf16", id="gemma3-bf16"),
    case("gemma3", "precision: bf16-pure", id="gemma3-bf16-pure"),
    case("gemma3", f"precision: bf16\n{SMALL}", "attention: eager", id="gemma3-bf16-eager"),
    case("gemma3", "freeze: {embeddings: true, layers: {first: 2}}", id="gemma3-freeze-first"),
    case("gemma3", "precision: bf16\nactivation_checkpointing: true", id="gemma3-bf16-ckpt-all"),
    case("gemma3", "", "head: sequence-classification", id="gemma3-seq-cls"),
    # A sequence as long as the window: the sliding layers get a mask the analytic model does
    # not count (-4.1%).
    case(
        "gemma3",
        "precision: bf16\nbatch: {micro_batch_size: 2, seq_len: 512}",
        id="gemma3-bf16-sequence-fills-sliding-window",
    ),
    # olmo2: q/k RMSNorms over the whole projections, norms after the attention and the MLP
    case("olmo2", id="olmo2-fp32"),
    case("olmo2", "precision: bf16", id="olmo2-bf16"),
    case("olmo2", "precision: bf16-pure", id="olmo2-bf16-pure"),
    case("olmo2", f"precision: bf16\n{SMALL}", "attention: eager", id="olmo2-bf16-eager"),
    case("olmo2", "freeze: {embeddings: true, layers: {first: 2}}", id="olmo2-freeze-first"),
    case(
        "olmo2",
        "freeze: {layers: {first: 2}, modules: [attention]}",
        id="olmo2-freeze-attention",
    ),
    case("olmo2", "precision: bf16\nactivation_checkpointing: true", id="olmo2-bf16-ckpt-all"),
    case("olmo2", "", "head: sequence-classification", id="olmo2-seq-cls"),
    # mixtral: each token routed to its top 2 of 4 experts (grouped_mm dispatch: tokens x 2
    # rows); fused 3-D expert weights, outside autocast's weight cache
    case("mixtral", id="mixtral-fp32"),
    case("mixtral", "precision: bf16", id="mixtral-bf16"),
    case("mixtral", "precision: bf16-pure", id="mixtral-bf16-pure"),
    case("mixtral", "freeze: {embeddings: true, layers: {first: 2}}", id="mixtral-freeze-first"),
    case("mixtral", "freeze: {patterns: ['*.experts.*']}", id="mixtral-freeze-experts"),
    case("mixtral", "activation_checkpointing: true", id="mixtral-ckpt-all"),
    case(
        "mixtral",
        "precision: bf16\nactivation_checkpointing: {layers: every-2}",
        id="mixtral-bf16-ckpt-every-2",
    ),
    case("mixtral", "", "head: sequence-classification", id="mixtral-seq-cls"),
    case("mixtral", f"optimizer: {{name: sgd}}\n{TINY}", id="mixtral-sgd-small-batch"),
    # granite: the llama layout with scalar multipliers (they save nothing) and a tied head
    case("granite", id="granite-fp32-tied"),
    case("granite", "precision: bf16", id="granite-bf16"),
    case("granite", "precision: bf16-pure", id="granite-bf16-pure"),
    case(
        "granite", "freeze: {embeddings: true, layers: {first: 2}}", id="granite-freeze-tied-head"
    ),
    case(
        "granite",
        f"precision: fp16\nactivation_checkpointing: true\n{SMALL}",
        "attention: eager",
        id="granite-fp16-eager-ckpt",
    ),
    # FSDP2 (fully_shard per block plus the root), traced as rank 0 of a fake process group.
    # Small batches, so the sharded and gathered parameter terms carry the peak.
    case("gpt2", f"{FSDP2}\n{TINY}", id="gpt2-fsdp2"),
    case("llama", f"{FSDP8}\n{TINY}", id="llama-fsdp8"),
    case("llama", FSDP8, id="llama-fsdp8-activation-bound"),
    case(
        "gpt2",
        f"{FSDP8}\nfreeze: {{embeddings: true, layers: {{first: 2}}}}\n{TINY}",
        id="gpt2-fsdp8-freeze-first",
    ),
    case(
        "bert",
        f"{FSDP2}\nfreeze: {{embeddings: true, layers: {{first: 2}}}}\n{SMALL}",
        id="bert-fsdp2-freeze-first",
    ),
    case(
        "llama", f"{FSDP8}\nfreeze: {{layers: {{last: 2}}}}\n{TINY}", id="llama-fsdp8-freeze-last"
    ),
    case("llama", f"{FSDP8}\nprecision: bf16\n{TINY}", id="llama-fsdp8-bf16"),
    case("mistral", f"{FSDP8}\nprecision: bf16\n{SMALL}", id="mistral-fsdp8-bf16"),
    case("llama", f"{FSDP8}\nprecision: bf16-pure\n{TINY}", id="llama-fsdp8-bf16-pure"),
    case("gpt2", f"{FSDP8}\nactivation_checkpointing: true\n{SMALL}", id="gpt2-fsdp8-ckpt-all"),
    case(
        "llama",
        f"{FSDP2}\nprecision: bf16\nactivation_checkpointing: true\n{SMALL}",
        id="llama-fsdp2-bf16-ckpt",
    ),
    case(
        "llama",
        f"{FSDP8}\nprecision: bf16\nactivation_checkpointing: {{layers: every-2}}\n{SMALL}",
        id="llama-fsdp8-bf16-ckpt-every-2",
    ),
    case(
        "qwen2",
        f"{FSDP8}\nfreeze: {{embeddings: true, layers: {{first: 1}}}}\n{TINY}",
        id="qwen2-fsdp8-freeze-tied-head",
    ),
    case(
        "llama",
        f"{FSDP8}\nbatch: {{micro_batch_size: 1, seq_len: 64, grad_accum_steps: 2}}",
        id="llama-fsdp8-grad-accum",
    ),
    case("llama", f"{FSDP8}\nprecision: fp16\n{TINY}", id="llama-fsdp8-fp16"),
    # The autocast cache keeps every trainable block's bf16 weights until the forward ends.
    case(
        "llama",
        f"{FSDP8}\nprecision: bf16\nactivation_checkpointing: true\n{TINY}",
        id="llama-fsdp8-bf16-ckpt-autocast-cache",
    ),
    # Frozen blocks and few tokens: the peak is a block's forward all-gather, its unsharded
    # parameters copied out beside its own and the previous unit's all-gather outputs.
    case(
        "llama-wide",
        f"{FSDP2}\nfreeze: {{embeddings: true, layers: '0-3'}}\n{FEW}",
        id="llama-wide-fsdp2-head-only",
    ),
    case(
        "llama",
        f"{FSDP8}\nprecision: bf16\nfreeze: {{embeddings: true, layers: '0-3'}}\n{FEW}",
        id="llama-fsdp8-bf16-head-only",
    ),
    case("gpt2", f"{FSDP2}\nfreeze: {{layers: '0-3'}}\n{FEW}", id="gpt2-fsdp2-frozen-blocks"),
    case(
        "mixtral",
        f"{FSDP2}\nprecision: bf16-pure\nfreeze: {{embeddings: true, layers: '0-3'}}\n{FEW}",
        id="mixtral-fsdp2-bf16-pure-head-only",
    ),
    case(
        "llama",
        f"{FSDP8}\nfreeze: {{embeddings: true, layers: '0-3'}}\n"
        "batch: {micro_batch_size: 1, seq_len: 16, grad_accum_steps: 2}",
        id="llama-fsdp8-grad-accum-head-only",
    ),
    # 4 experts over 8 ranks: each rank holds one expert's rows of the fused weights (padded)
    case("mixtral", f"{FSDP8}\n{TINY}", id="mixtral-fsdp8"),
    case("mixtral", f"{FSDP2}\nprecision: bf16\n{SMALL}", id="mixtral-fsdp2-bf16"),
    # LoRA adapters (peft) on a frozen base, and QLoRA: the base's frozen linears stored 4-bit
    # (bitsandbytes, emulated at its true storage in the trace: memory/emulated.py).
    case("gpt2", "adapter: {r: 8, targets: [attention]}", id="gpt2-lora-attention"),
    case("gpt2", "precision: bf16\nadapter: {targets: all-linear}", id="gpt2-lora-bf16-all-linear"),
    case("gpt2", "adapter: {r: 8, dropout: 0.1}", id="gpt2-lora-dropout"),
    case("gpt2", "adapter: {r: 8, layers: {last: 2}}", id="gpt2-lora-last-2"),
    case("gpt2", "adapter: {r: 8}\nactivation_checkpointing: true", id="gpt2-lora-ckpt"),
    case("gpt2", f"{NF4}\nprecision: bf16\nadapter: {{r: 8}}", id="gpt2-qlora-bf16"),
    case("gpt2", f"{NF4}\nadapter: {{r: 8, dropout: 0.1}}", id="gpt2-qlora-fp32-dropout"),
    case(
        "gpt2",
        "adapter: {r: 8, train: ['score.*']}",
        "head: sequence-classification",
        id="gpt2-lora-seq-cls-train-score",
    ),
    case("bert", "adapter: {r: 8, targets: [query, value]}", id="bert-lora-query-value"),
    # MLP-only adapters: the lowest adapted block records nothing before its MLP.
    case("bert", "precision: bf16\nadapter: {r: 8, targets: [mlp]}", id="bert-lora-bf16-mlp"),
    case("llama", "adapter: {r: 8}", id="llama-lora-fp32"),
    case("llama", "precision: bf16\nadapter: {r: 8}", id="llama-lora-bf16"),
    case("llama", "precision: bf16\nadapter: {targets: [q_proj, v_proj]}", id="llama-lora-q-v"),
    case("llama", "precision: bf16\nadapter: {r: 8, dropout: 0.1}", id="llama-lora-bf16-dropout"),
    case(
        "llama", "precision: bf16\nadapter: {r: 8, layers: {last: 2}}", id="llama-lora-bf16-last-2"
    ),
    case(
        "llama",
        "precision: bf16\nadapter: {r: 8, train: ['lm_head.*']}",
        id="llama-lora-bf16-train-head",
    ),
    case(
        "llama",
        "precision: bf16\nadapter: {r: 8}\nactivation_checkpointing: true",
        id="llama-lora-bf16-ckpt",
    ),
    case(
        "llama",
        "adapter: {r: 8, dropout: 0.05}\nactivation_checkpointing: {layers: every-2}",
        id="llama-lora-ckpt-every-2-dropout",
    ),
    case("llama", "optimizer: {name: sgd, momentum: 0.9}\nadapter: {r: 8}", id="llama-lora-sgd"),
    case(
        "llama",
        f"distributed: {{strategy: ddp}}\nhardware: {{gpus_per_node: 2, memory_gib: 80}}\n"
        f"precision: bf16\nadapter: {{r: 8}}\n{SMALL}",
        id="llama-lora-ddp",
    ),
    # LoRA under FSDP2: each lora_A / lora_B is a parameter of its block's unit, sharded and
    # gathered with the frozen weights beside it, its gradient reduce-scattered.
    case(
        "llama", f"{FSDP2}\nprecision: bf16\nadapter: {{r: 8}}\n{SMALL}", id="llama-lora-fsdp2-bf16"
    ),
    case("llama", f"{FSDP8}\nadapter: {{r: 8}}\n{TINY}", id="llama-lora-fsdp8-fp32-tiny"),
    case(
        "gpt2",
        f"{FSDP2}\nadapter: {{r: 8, targets: [attention]}}\n"
        f"activation_checkpointing: true\n{SMALL}",
        id="gpt2-lora-fsdp2-attention-ckpt",
    ),
    case(
        "qwen2",
        f"{FSDP2}\nprecision: bf16\nadapter: {{r: 8, dropout: 0.1, layers: {{last: 2}}}}\n{SMALL}",
        id="qwen2-lora-fsdp2-bf16-last-2-dropout",
    ),
    case(
        "mistral",
        f"{FSDP8}\nprecision: bf16\nadapter: {{r: 16, targets: all-linear}}\n"
        f"activation_checkpointing: true\n{TINY}",
        id="mistral-lora-fsdp8-bf16-all-linear-ckpt",
    ),
    case("llama", f"{NF4}\nprecision: bf16\nadapter: {{r: 8}}", id="llama-qlora-nf4-bf16"),
    case(
        "llama",
        "quantization: {weights: fp4, double_quant: false}\nprecision: bf16\nadapter: {r: 8}",
        id="llama-qlora-fp4-single-quant",
    ),
    case("llama", f"{NF4}\nadapter: {{r: 8}}", id="llama-qlora-nf4-fp32"),
    case(
        "llama",
        f"{NF4}\nprecision: bf16\nadapter: {{r: 8, dropout: 0.1}}",
        id="llama-qlora-bf16-dropout",
    ),
    case(
        "llama",
        f"{NF4}\nprecision: bf16\nadapter: {{r: 8}}\nactivation_checkpointing: true",
        id="llama-qlora-bf16-ckpt",
    ),
    case(
        "llama",
        f"{NF4}\nprecision: bf16\nadapter: {{r: 8, layers: {{last: 2}}}}",
        id="llama-qlora-bf16-last-2",
    ),
    case(
        "llama",
        f"{NF4}\nprecision: bf16\nadapter: {{r: 8, targets: [mlp]}}",
        id="llama-qlora-bf16-mlp",
    ),
    case("llama", f"{NF4}\nprecision: bf16\nadapter: {{r: 8}}\n{TINY}", id="llama-qlora-bf16-tiny"),
    # Few tokens: a block's peak is its down projection's backward, which dequantizes the
    # weight again (fp32, as loaded) and casts it to the compute dtype.
    case(
        "llama",
        f"{NF4}\nadapter: {{r: 8}}\nbatch: {{micro_batch_size: 1, seq_len: 16}}",
        id="llama-qlora-fp32-few-tokens",
    ),
    case("mistral", f"{NF4}\nprecision: bf16\nadapter: {{r: 8}}", id="mistral-qlora-bf16"),
    case("qwen2", "precision: bf16\nadapter: {r: 8}", id="qwen2-lora-bf16"),
    case(
        "qwen3",
        f"{NF4}\nprecision: bf16\nadapter: {{r: 16, dropout: 0.05}}",
        id="qwen3-qlora-bf16-dropout",
    ),
    case("phi3", "precision: bf16\nadapter: {r: 8}", "dropout: 0.0", id="phi3-lora-bf16"),
    case("gemma3", f"{NF4}\nprecision: bf16\nadapter: {{r: 8}}", id="gemma3-qlora-bf16"),
    case("olmo2", "precision: bf16\nadapter: {r: 8}", id="olmo2-lora-bf16"),
    case(
        "mixtral",
        "precision: bf16\nadapter: {r: 8, targets: [attention]}",
        id="mixtral-lora-bf16-attention",
    ),
    case("granite", f"{NF4}\nprecision: bf16\nadapter: {{r: 8}}", id="granite-qlora-bf16"),
    case("bert", f"{NF4}\nprecision: bf16\nadapter: {{r: 8}}", id="bert-qlora-bf16"),
    case("gpt2", f"precision: fp16\nadapter: {{r: 8}}\n{SMALL}", id="gpt2-lora-fp16"),
    case(
        "llama",
        f"{NF4}\nprecision: bf16\nadapter: {{r: 8, layers: [1, 3]}}",
        id="llama-qlora-bf16-layers-1-3",
    ),
    case(
        "qwen2",
        "precision: bf16\nadapter: {r: 8, train: ['model.embed_tokens.*']}",
        id="qwen2-lora-bf16-train-tied-embeddings",
    ),
    # A quantized base without an adapter: the blocks the freeze section freezes are stored
    # 4-bit, the rest train in full.
    case(
        "llama",
        f"{NF4}\nprecision: bf16\nfreeze: {{layers: {{first: 2}}}}",
        id="llama-nf4-freeze-first-2",
    ),
    # An int8 base (bitsandbytes LLM.int8): every int8 linear whose input needs a gradient
    # keeps that input as long as the graph lives, checkpointed or not (analytic/int8.py).
    case("llama", f"{INT8}\nprecision: bf16\nadapter: {{r: 8}}", id="llama-int8-lora-bf16"),
    case("llama", f"{INT8}\nadapter: {{r: 8}}", id="llama-int8-lora-fp32"),
    case(
        "llama",
        f"{INT8}\nprecision: bf16\nadapter: {{r: 8}}\nactivation_checkpointing: true",
        id="llama-int8-lora-bf16-ckpt",
    ),
    case(
        "llama",
        f"{INT8}\nprecision: bf16\nadapter: {{r: 8, dropout: 0.1}}",
        id="llama-int8-lora-bf16-dropout",
    ),
    case(
        "llama",
        f"{INT8}\nprecision: bf16\nadapter: {{r: 8, layers: {{last: 2}}}}",
        id="llama-int8-lora-bf16-last-2",
    ),
    case(
        "llama",
        f"{INT8}\nprecision: bf16\nadapter: {{r: 8, targets: [mlp]}}",
        id="llama-int8-lora-bf16-mlp",
    ),
    case(
        "llama",
        f"{INT8}\nprecision: bf16\nadapter: {{r: 8}}",
        "attention: eager",
        id="llama-int8-lora-bf16-eager",
    ),
    case("llama", f"{INT8}\nprecision: bf16\nadapter: {{r: 8}}\n{TINY}", id="llama-int8-lora-tiny"),
    case(
        "llama",
        f"{INT8}\nprecision: bf16\nadapter: {{r: 8, dropout: 0.1}}\n"
        "activation_checkpointing: {layers: every-2}",
        id="llama-int8-lora-ckpt-every-2-dropout",
    ),
    case(
        "llama",
        f"{INT8}\nprecision: bf16\nfreeze: {{layers: {{first: 2}}}}",
        id="llama-int8-freeze-first-2",
    ),
    # More of them: a frozen quantized block above a trained one passes the gradient down (its
    # backward dequantizes the weight again and keeps what that needs; nothing is kept below
    # the lowest trained block), with and without checkpointing, each format.
    case(
        "llama",
        f"{INT8}\nprecision: bf16\nfreeze: {{layers: {{last: 2}}}}",
        id="llama-int8-freeze-last-2",
    ),
    case(
        "llama",
        f"{INT8}\nprecision: bf16\nfreeze: {{layers: {{last: 2}}}}\nactivation_checkpointing: true",
        id="llama-int8-freeze-last-2-ckpt",
    ),
    case(
        "llama",
        f"{INT8}\nprecision: bf16\nfreeze: {{layers: {{first: 2}}}}\n"
        "activation_checkpointing: true",
        id="llama-int8-freeze-first-2-ckpt",
    ),
    case("llama", f"{NF4}\nfreeze: {{layers: {{last: 2}}}}", id="llama-nf4-freeze-last-2-fp32"),
    case(
        "llama",
        f"{NF4}\nprecision: bf16\nfreeze: {{layers: {{first: 2}}}}\nactivation_checkpointing: true",
        id="llama-nf4-freeze-first-2-ckpt",
    ),
    case(
        "llama",
        f"{NF4}\nprecision: bf16\nfreeze: {{layers: {{last: 2}}}}\n{FEW}",
        id="llama-nf4-freeze-last-2-few",
    ),
    case(
        "llama",
        f"{TORCHAO}\nprecision: bf16\nfreeze: {{layers: {{last: 2}}}}",
        id="llama-torchao-freeze-last-2",
    ),
    case("gpt2", f"{INT8}\nfreeze: {{layers: {{first: 2}}}}", id="gpt2-int8-freeze-first-2-fp32"),
    case("gpt2", f"{INT8}\nprecision: bf16\nadapter: {{r: 8}}", id="gpt2-int8-lora-bf16"),
    case("gpt2", f"{INT8}\nadapter: {{r: 8, dropout: 0.1}}", id="gpt2-int8-lora-fp32-dropout"),
    case(
        "gpt2",
        f"{INT8}\nprecision: bf16\nadapter: {{r: 8}}\nactivation_checkpointing: true",
        id="gpt2-int8-lora-bf16-ckpt",
    ),
    case(
        "gpt2",
        f"{INT8}\nprecision: bf16\nadapter: {{r: 8, targets: [mlp], layers: {{last: 2}}}}",
        id="gpt2-int8-lora-bf16-mlp-last-2",
    ),
    case("qwen2", f"{INT8}\nprecision: bf16\nadapter: {{r: 8}}", id="qwen2-int8-lora-bf16"),
    case(
        "qwen2",
        f"{INT8}\nprecision: bf16\nadapter: {{r: 8, dropout: 0.1, layers: {{last: 2}}}}",
        id="qwen2-int8-lora-bf16-last-2-dropout",
    ),
    case(
        "qwen2",
        f"{INT8}\nprecision: bf16\nadapter: {{r: 8, train: ['model.embed_tokens.*']}}",
        id="qwen2-int8-lora-bf16-train-tied-embeddings",
    ),
    case(
        "llama",
        f"{INT8}\nprecision: bf16\nadapter: {{r: 8, train: ['model.embed_tokens.*']}}\n"
        "activation_checkpointing: true",
        id="llama-int8-lora-bf16-ckpt-train-embeddings",
    ),
    case("bert", f"{INT8}\nprecision: bf16\nadapter: {{r: 8}}", id="bert-int8-lora-bf16"),
    case(
        "bert",
        f"{INT8}\nadapter: {{r: 8, targets: [query, value]}}",
        id="bert-int8-lora-query-value",
    ),
    # A torchao int8 base (int8 weight-only): each linear whose input needs a gradient saves
    # its weight in the compute dtype (and under autocast its cast row scales) for the
    # backward (analytic/torchao.py); checkpointing drops them with the block.
    case("llama", f"{TORCHAO}\nprecision: bf16\nadapter: {{r: 8}}", id="llama-torchao-lora-bf16"),
    case("llama", f"{TORCHAO}\nadapter: {{r: 8}}", id="llama-torchao-lora-fp32"),
    case(
        "llama",
        f"{TORCHAO}\nprecision: bf16\nadapter: {{r: 8}}\nactivation_checkpointing: true",
        id="llama-torchao-lora-bf16-ckpt",
    ),
    case(
        "llama",
        f"{TORCHAO}\nprecision: bf16\nadapter: {{r: 8, dropout: 0.1, layers: {{last: 2}}}}",
        id="llama-torchao-lora-bf16-last-2-dropout",
    ),
    case(
        "llama",
        f"{TORCHAO}\nprecision: bf16\nadapter: {{r: 8, targets: [mlp]}}",
        id="llama-torchao-lora-bf16-mlp",
    ),
    case(
        "llama",
        f"{TORCHAO}\nprecision: bf16\nadapter: {{r: 8}}\n{TINY}",
        id="llama-torchao-lora-tiny",
    ),
    case("qwen2", f"{TORCHAO}\nprecision: bf16\nadapter: {{r: 8}}", id="qwen2-torchao-lora-bf16"),
    case(
        "mistral",
        f"{TORCHAO}\nprecision: fp16\nadapter: {{r: 8, targets: all-linear}}\n"
        "activation_checkpointing: true",
        id="mistral-torchao-lora-fp16-ckpt",
    ),
    # Packed rows (data.packing): position_ids restart at every document, so transformers gives
    # every block's sdpa a (b, 1, s, s) mask, which it keeps in the query's dtype, and repeats
    # grouped K/V to every head (operators.packed_mask); checkpointed blocks keep the shared
    # bool mask alive. Eager attention builds the same mask packed or not: no term.
    case("llama", f"precision: bf16\n{PACKED}", id="llama-bf16-packed"),
    # fp32 GQA: the mask moves sdpa from the math kernel to the memory-efficient one.
    case("llama", PACKED, id="llama-fp32-packed"),
    case("llama", f"precision: bf16\n{PACKED}", "attention: eager", id="llama-bf16-eager-packed"),
    case("llama", f"activation_checkpointing: true\n{PACKED}", id="llama-fp32-ckpt-all-packed"),
    case(
        "llama",
        f"precision: bf16\nactivation_checkpointing: {{layers: every-2}}\n{PACKED}\n"
        "batch: {micro_batch_size: 2, seq_len: 512}",
        id="llama-bf16-ckpt-every-2-packed-long",
    ),
    case("gpt2", PACKED, id="gpt2-fp32-packed"),
    case(
        "gpt2",
        f"precision: bf16\n{PACKED}\nbatch: {{micro_batch_size: 3, seq_len: 100}}",
        id="gpt2-bf16-packed-odd-shape",
    ),
    # phi3: a repeated v is a copy, so the fused projection's output is no longer kept.
    case("phi3", f"precision: bf16\n{PACKED}", "dropout: 0.0", id="phi3-bf16-packed"),
    # gemma3 builds a full and a sliding-window mask; both are kept under checkpointing.
    case(
        "gemma3",
        f"precision: bf16\nactivation_checkpointing: true\n{PACKED}",
        id="gemma3-bf16-ckpt-all-packed",
    ),
    case("qwen3", f"precision: bf16-pure\n{PACKED}", id="qwen3-bf16-pure-packed"),
    case("mixtral", f"precision: bf16\n{PACKED}\n{SMALL}", id="mixtral-bf16-packed"),
    case(
        "olmo2",
        f"precision: bf16\n{PACKED}\nbatch: {{micro_batch_size: 2, seq_len: 512}}",
        id="olmo2-bf16-packed-long",
    ),
    case(
        "qwen2",
        f"precision: fp16\nactivation_checkpointing: true\n{PACKED}",
        "attention: eager",
        id="qwen2-fp16-eager-ckpt-packed",
    ),
    case(
        "llama",
        f"{FSDP2}\nprecision: bf16\nactivation_checkpointing: true\n{PACKED}\n"
        "batch: {micro_batch_size: 4, seq_len: 512}",
        id="llama-fsdp2-bf16-ckpt-packed",
    ),
    case(
        "llama",
        f"precision: bf16\nadapter: {{r: 8}}\nfreeze: {{layers: {{first: 2}}}}\n{PACKED}",
        id="llama-lora-bf16-freeze-first-packed",
    ),
    # BERT's mask ignores the restarts (Family.packed_documents): nothing changes.
    case("bert", f"precision: bf16\n{PACKED}", id="bert-bf16-packed"),
]


@pytest.mark.parametrize(("family", "body", "model_extra"), CASES)
def test_analytic_within_tolerance_of_traced(request, golden, make_spec, family, body, model_extra):
    spec = make_spec(family, body, model_extra)
    analytic = estimate(spec, "analytic")
    traced = estimate(spec, "traced")
    # Both estimates and every moment of the analytic step are pinned: a restructuring must not
    # move a byte, an intended change is refreshed with --update-golden and reviewed as a diff.
    record = {
        "analytic": analytic.to_json_dict(),
        "traced": traced.to_json_dict(),
        "moments": {m.name: m.breakdown.total for m in analyse(spec).moments},
    }
    golden.check_json(record, GOLDEN / f"{request.node.callspec.id}.json")
    assert analytic.total_parameters == traced.total_parameters
    assert analytic.trainable_parameters == traced.trainable_parameters
    error = analytic.peak_bytes / traced.peak_bytes - 1
    assert abs(error) <= TOLERANCE, (
        f"analytic {analytic.peak_bytes:,} vs traced {traced.peak_bytes:,}: {error:+.1%}"
    )
