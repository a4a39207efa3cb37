"""The catalog's newer models (issue 29): parameter counts against the published figures,
the shipped Hugging Face config.json of each giving the catalog's own architecture, one
layer of each new kind at the real sizes by hand, and the importer's refusals."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from roofline.cli import app
from roofline.errors import SpecError
from roofline.scenario import RunConfig
from roofline.workloads import get_workload, load_workload_file

# Published totals, written from the publications (not the YAML): HF safetensors
# total_size / bytes an element where the card rounds (see each catalog file)
PUBLISHED = [
    ("mistral-7b", 7_241_732_096),  # 14,483,464,192 bytes bf16; announced "7.3B"
    ("qwen2.5-72b", 72_706_203_648),  # 145,412,407,296 bytes bf16; card "72.7B"
    ("qwen3-32b", 32_762_123_264),  # 65,524,246,528 bytes bf16; card "32.8B"
    ("qwen3-30b-a3b", 30_532_122_624),  # 61,064,245,248 bytes bf16; card "30.5B"
    ("gemma-2-27b", 27_227_128_320),  # 108,908,513,280 bytes fp32
    ("llama-3.1-405b", 405_853_388_800),  # 811,706,777,600 bytes bf16
    ("mixtral-8x22b", 140_620_634_112),  # 281,241,268,224 bytes bf16; announced "141B"
]
NEW = [k for k, _ in PUBLISHED] + ["deepseek-v3"]


@pytest.mark.parametrize(("key", "params"), PUBLISHED, ids=[k for k, _ in PUBLISHED])
def test_parameters_match_the_published_count_exactly(key, params):
    assert get_workload(key).params == params


def test_deepseek_v3_parameters_by_hand():
    """671B main model (paper), the MTP module on top in training (README: 685B with it)."""
    h, v, e, f = 7168, 129280, 256, 2048
    attn = (
        h * 1536  # W_DQ
        + 1536  # its norm
        + 1536 * 128 * (128 + 64)  # W_UQ: nope + rope a head
        + h * (512 + 64)  # W_DKV and the shared rotary key
        + 512  # the latent's norm
        + 512 * 128 * (128 + 128)  # W_UK, W_UV
        + 128 * 128 * h  # W_O
    )
    norms = 2 * h
    dense = 3 * h * 18432
    moe = (e + 1) * 3 * h * f + h * e + e  # 256 routed + 1 shared, router and score bias
    main = 61 * (attn + norms) + 3 * dense + 58 * moe + 2 * v * h + h
    assert main == 671_026_419_200
    assert round(main / 1e9) == 671  # the paper's "671B total parameters"
    # the MTP module (run beside the model): 2 norms, 2h -> h, one MoE block, a norm
    mtp = 2 * h + 2 * h * h + attn + norms + moe + h
    assert mtp == 11_610_068_224
    w = get_workload("deepseek-v3")
    assert w.params == main + mtp
    # README: "685B" on Hugging Face = main + MTP + the module's copies of the embedding and
    # head (684.49B; the FP8 checkpoint's block scales, one fp32 a 128 x 128 block, add the
    # rest to 684.53B, rounded up to 685B)
    assert main + mtp + 2 * v * h == 684_489_845_504
    training = w.arch.build(RunConfig(batch=1, seq=8, phase="training"), "deepseek-v3")
    assert training.total_params == main + mtp
    # activated a token: all but 248 of the 256 routed experts in each of 58 MoE layers
    active = main - 58 * (e - 8) * 3 * h * f  # the MTP module predicts other tokens
    assert w.active_params == active == 37_552_297_472  # published "37B activated"


def test_active_parameters_of_the_moe_models():
    # Qwen3-30B-A3B: 120 of 128 experts idle in 48 layers; card: 3.3B activated
    q = get_workload("qwen3-30b-a3b")
    assert q.active_params == 30_532_122_624 - 48 * 120 * 3 * 2048 * 768
    assert round(q.active_params / 1e8) == 34  # 3.35B ("3.3B")
    m = get_workload("mixtral-8x22b")
    assert m.active_params == 140_620_634_112 - 56 * 6 * 3 * 6144 * 16384
    assert round(m.active_params / 1e9) == 39  # "39B active parameters"


@pytest.mark.parametrize("key", NEW)
def test_shipped_config_json_gives_the_catalog_architecture(key, repo):
    imported = load_workload_file(repo / "workloads" / "hf" / key / "config.json")
    w = get_workload(key)
    assert imported.arch == w.arch
    assert imported.params == w.params


def test_mistral_sliding_window_layer_by_hand():
    """One Mistral 7B layer over 8,192 tokens (fused kernel): 4,096 keys at most a query."""
    w = get_workload("mistral-7b")
    t = w.layers(RunConfig(batch=1, seq=8192, attention="flash"))
    i = [str(n) for n in t.name].index("block.attn_local.flash")
    pairs = 4096 * 4097 // 2 + (8192 - 4096) * 4096  # 25,174,016 (causal alone: 33,558,528)
    assert t.flops[i] == 32 * pairs * (2 * 128 * 2 + 6)
    # the cache after a decode step at 32,000 tokens: 4,096 a layer, K and V of 8 x 128
    step = RunConfig(batch=1, phase="decode", context=32000)
    assert w.arch.kv_cache_elements(step) == 32 * 4096 * 2 * 8 * 128


def test_gemma2_local_and_global_cache_by_hand():
    w = get_workload("gemma-2-27b")
    step = RunConfig(batch=2, phase="decode", context=8000)
    # 23 global layers keep 8,001 tokens, 23 local ones 4,096; K and V of 16 x 128
    assert w.arch.kv_cache_elements(step) == 2 * (23 * 8001 + 23 * 4096) * 2 * 16 * 128


def test_deepseek_v3_mla_decode_layer_by_hand():
    """One absorbed MLA layer in a decode step over 4,095 cached tokens + the new one."""
    w = get_workload("deepseek-v3")
    step = RunConfig(batch=1, phase="decode", context=4095, attention="flash")
    t = w.layers(step)
    r = {str(n): i for i, n in enumerate(t.name)}
    h, keys = 128, 4096
    assert t.flops[r["block.attn.q_down"]] == 2 * 7168 * 1536
    assert t.flops[r["block.attn.q_up"]] == 2 * 1536 * h * 192
    assert t.flops[r["block.attn.kv_down"]] == 2 * 7168 * 576
    assert t.flops[r["block.attn.q_absorb"]] == 2 * h * 128 * 512
    assert t.flops[r["block.attn.flash"]] == 2 * h * keys * (576 + 512) + 6 * h * keys
    assert t.flops[r["block.attn.v_up"]] == 2 * h * 512 * 128
    assert t.flops[r["block.attn.out_proj"]] == 2 * h * 128 * 7168
    # the cache: 576 values a token a layer (vs 2 x 128 x 128 = 32,768 without MLA)
    assert w.arch.kv_cache_elements(step) == (61 + 1) * 576 * 4096  # + the MTP block's


def test_deepseek_v3_routed_and_shared_moe_layer_by_hand():
    w = get_workload("deepseek-v3")
    t = w.layers(RunConfig(batch=1, seq=10))
    r = {str(n): i for i, n in enumerate(t.name)}
    assert t.count[r["block.ffn_up"]] == 3 and t.count[r["block.moe.expert_up"]] == 58
    assert t.flops[r["block.moe.router"]] == 2 * 10 * 7168 * 256 + 10 * 256
    assert t.flops[r["block.moe.expert_up"]] == 2 * 10 * 8 * 7168 * 2 * 2048
    assert t.flops[r["block.moe.expert_down"]] == 2 * 10 * 8 * 2048 * 7168
    assert t.flops[r["block.moe.shared_up"]] == 2 * 10 * 7168 * 2 * 2048
    assert t.flops[r["block.moe.shared_down"]] == 2 * 10 * 2048 * 7168


QWEN2_7B = {  # the fields of Qwen/Qwen2-7B's config.json
    "architectures": ["Qwen2ForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151643,
    "hidden_act": "silu",
    "hidden_size": 3584,
    "initializer_range": 0.02,
    "intermediate_size": 18944,
    "max_position_embeddings": 131072,
    "max_window_layers": 28,
    "model_type": "qwen2",
    "num_attention_heads": 28,
    "num_hidden_layers": 28,
    "num_key_value_heads": 4,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 131072,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.37.2",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 152064,
}


def test_qwen2_biases_on_qkv_only(tmp_path):
    """HF Qwen/Qwen2-7B: 7,615,616,512 parameters (safetensors 15,231,233,024 bytes bf16).
    Counting a bias on o_proj and the MLP too gave 1,261,568 more: 28 x (3,584 + 2 x 18,944
    + 3,584)."""
    path = tmp_path / "qwen2-7b" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(QWEN2_7B))
    assert load_workload_file(path).params == 7_615_616_512
    assert 28 * (3584 + 2 * 18944 + 3584) == 1_261_568


def _refused(tmp_path, config, message):
    path = tmp_path / "m" / "config.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(config))
    with pytest.raises(SpecError, match=message):
        load_workload_file(path)
    res = CliRunner().invoke(app, ["run", "-m", str(path), "--hw", "a100"])
    assert res.exit_code == 2, res.output
    assert len(res.stderr.strip().splitlines()) == 1 and message.split(":")[0] in res.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"use_sliding_window": True}, "use_sliding_window: True is not modelled"),
        ({"attention_bias": True}, "attention_bias: not modelled by roofline"),  # no such field
        ({"num_hidden_groups": 2}, "num_hidden_groups: not modelled by roofline"),
        ({"layer_types": ["full_attention"]}, "layer_types: not modelled by roofline"),
    ],
)
def test_importer_refuses_what_it_does_not_model_by_name(tmp_path, change, message):
    _refused(tmp_path, QWEN2_7B | change, message)


def test_importer_refusals_of_the_other_new_types(tmp_path, repo):
    hf = repo / "workloads" / "hf"
    moe = json.loads((hf / "qwen3-30b-a3b" / "config.json").read_text())
    _refused(tmp_path, moe | {"mlp_only_layers": [0]}, "mlp_only_layers: .0. is not modelled")
    ds = json.loads((hf / "deepseek-v3" / "config.json").read_text())
    _refused(tmp_path, ds | {"index_topk": 2048}, "index_topk: not modelled")
    mistral = json.loads((hf / "mistral-7b" / "config.json").read_text())
    _refused(tmp_path, mistral | {"mlp_bias": True}, "mlp_bias: True is not modelled")
    llama = json.loads((hf / "llama-3.1-405b" / "config.json").read_text())
    _refused(tmp_path, llama | {"attention_bias": True}, "attention_bias: True is not modelled")


def test_mistral_sliding_window_is_read_not_ignored(tmp_path, repo):
    config = json.loads((repo / "workloads" / "hf" / "mistral-7b" / "config.json").read_text())
    path = tmp_path / "m" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(config | {"sliding_window": 1024}))
    assert load_workload_file(path).arch.sliding_window == 1024
    path.write_text(json.dumps(config | {"sliding_window": None}))
    assert load_workload_file(path).arch.sliding_window == 0


@pytest.mark.parametrize("key", NEW)
def test_new_models_run_and_give_memory(key):
    """Each new model through run (every phase) and memory on an H100, exit 0."""
    for phase in ("prefill", "decode", "training"):
        res = CliRunner().invoke(
            app, ["run", "-m", key, "--hw", "h100", "--phase", phase, "--seq", "256", "-f", "json"]
        )
        assert res.exit_code == 0, res.output
    res = CliRunner().invoke(
        app, ["memory", "-m", key, "--hw", "h100", "--phase", "decode", "--tp", "4", "-f", "json"]
    )
    assert res.exit_code == 0, res.output
