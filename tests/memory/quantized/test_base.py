"""Which linears transformers quantizes, family by family, and a whole quantized tiny model's
storages against the formulas, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from freezegen.arch import from_hf_config
from freezegen.arch.families import all_families, family_of
from freezegen.arch.family import CAUSAL_LM, SEQUENCE_CLASSIFICATION, Family
from freezegen.arch.params import parameter_table
from freezegen.memory.quantized import LinearFormat, base_storage, quantized_linears
from freezegen.memory.quantized.storage import shared_storage
from freezegen.spec import load_spec
from tests.family_configs import TINY_CONFIGS

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("bitsandbytes")

from tests.memory.quantized.layers import held_tensors, storages  # noqa: E402

FAMILIES = all_families()


def _table(tmp_path: Path, family: Family, head: str):
    from tests.generate.conftest import tiny_spec

    path = tiny_spec(tmp_path, family.name, model={"hf_config": "./config.json", "head": head})
    spec = load_spec(path)
    arch = from_hf_config(spec.model.hf_config)
    return spec, parameter_table(arch, head, spec.model.num_labels or 2)


def _transformers_quantizes(model, skip: list[str] | None = None) -> dict[str, tuple[int, int]]:
    """Run transformers' own bitsandbytes module replacement on ``model`` (meta device)."""
    import bitsandbytes as bnb
    from transformers import BitsAndBytesConfig
    from transformers.integrations import replace_with_bnb_linear
    from transformers.quantizers.auto import AutoHfQuantizer

    config = BitsAndBytesConfig(load_in_4bit=True, llm_int8_skip_modules=skip)
    quantizer = AutoHfQuantizer.from_config(config)
    not_converted = quantizer.get_modules_to_not_convert(
        model, config.llm_int8_skip_modules, model._keep_in_fp32_modules
    )
    replace_with_bnb_linear(model, modules_to_not_convert=not_converted, quantization_config=config)
    return {
        name: (m.out_features, m.in_features)
        for name, m in model.named_modules()
        if isinstance(m, bnb.nn.Linear4bit)
    }


def _meta_model(spec):
    from freezegen.memory.traced import build_model

    with torch.device("meta"):
        model, _ = build_model(spec)
    return model


@pytest.mark.parametrize(
    ("family", "head"),
    [(f, h) for f in FAMILIES for h in (CAUSAL_LM, SEQUENCE_CLASSIFICATION) if h in f.heads],
    ids=lambda x: getattr(x, "name", x),
)
def test_the_quantized_linears_are_the_ones_transformers_replaces(family, head, tmp_path):
    spec, table = _table(tmp_path, family, head)
    expected = _transformers_quantizes(_meta_model(spec))
    assert quantized_linears(table, family) == expected


def test_skip_modules_replace_the_defaults(tmp_path):
    family = next(f for f in FAMILIES if f.name == "llama")
    spec, table = _table(tmp_path, family, CAUSAL_LM)
    skip = ["mlp.down_proj", "model.layers.1"]
    expected = _transformers_quantizes(_meta_model(spec), skip)
    linears = quantized_linears(table, family, skip)
    assert linears == expected
    assert "lm_head" in linears  # a skip list replaces the default that spares the head
    assert not any(name.startswith("model.layers.1.") for name in linears)


FORMATS = [
    LinearFormat("nf4", double_quant=True),
    LinearFormat("fp4", double_quant=False, quant_storage="bfloat16"),
    LinearFormat("int8"),
]


def _bnb_config(fmt: LinearFormat):
    from transformers import BitsAndBytesConfig

    if not fmt.four_bit:
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=fmt.threshold)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=fmt.weights,
        bnb_4bit_use_double_quant=fmt.double_quant,
        bnb_4bit_compute_dtype=getattr(torch, fmt.compute),
        bnb_4bit_quant_storage=getattr(torch, fmt.quant_storage),
    )


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.weights}-dq{f.double_quant:d}")
# gpt2: Conv1D, biases, a tied head; mixtral: a router and fused 3-D experts left in bf16
@pytest.mark.parametrize("name", ["llama", "gpt2", "mixtral"])
def test_a_quantized_model_holds_what_base_storage_says(name, fmt, tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(AutoConfig.for_model(**TINY_CONFIGS[name])).save_pretrained(
        tmp_path
    )
    model = AutoModelForCausalLM.from_pretrained(
        tmp_path, quantization_config=_bnb_config(fmt), dtype=torch.bfloat16
    )
    arch = from_hf_config(tmp_path / "config.json")
    family = family_of(arch)
    tensors = base_storage(parameter_table(arch, CAUSAL_LM, 2), family, fmt, "bfloat16")
    per_model = [t for t in tensors if t not in shared_storage(fmt)]
    assert storages(held_tensors(model)) == sorted((t.dtype, t.nbytes) for t in per_model)
    # norms, embeddings and the head stay in the dtype the model was loaded in
    assert {p.dtype for n, p in model.named_parameters() if "norm" in n or "ln_" in n} == {
        torch.bfloat16
    }


def test_explained_writes_each_kind_of_tensor_once():
    from freezegen.memory.quantized import allocated, explained
    from freezegen.spec.presets import MODEL_PRESETS

    arch = MODEL_PRESETS["llama-3.2-1b"]  # 16 blocks of 7 linears, a tied head
    table = parameter_table(arch)
    tensors = base_storage(table, family_of(arch), LinearFormat("nf4"))
    parts = explained(tensors, "nf4")
    assert sum(p.value for p in parts) == allocated(tensors)
    by_label = {p.label: p for p in parts}
    blocks = sum(-(p.numel // -64) for p in table if p.kind in ("attention", "mlp"))
    absmax = by_label["nf4 quant_state.absmax x 112"]
    assert absmax.factors == ((blocks, "uint8"), (1, "B"))
    assert absmax.note == "one 8-bit scale per block of 64 weights (double quantization)"
    code = by_label["nf4 quant_state.code x 112"]
    assert code.value == 112 * 512  # 64 bytes each, a 512-byte block each
    assert by_label["nf4 embeddings parameters"].factors == (
        (arch.vocab_size * arch.hidden_size, "bfloat16"),
        (2, "B"),
    )
    assert by_label["nf4 norm parameters x 33"].value == 33 * 4096
