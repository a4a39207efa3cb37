"""Read a Hugging Face transformers `config.json` (BERT, RoBERTa, ELECTRA, ALBERT, GPT-2,
Llama, Mistral, Mixtral, Qwen2, Qwen3, Qwen3-MoE, Gemma 2, DeepSeek-V3, T5 families) into a
transformer Workload. No network: the file is the whole input. Each supported `model_type`
maps its field names onto the transformer architecture schema, which then validates as a
workload file would.

The decoder types (`STRICT`) account for every field of the config: a field is read into
the architecture, or listed in `INERT` (it changes no cost the tool models: token ids,
initialisation, norm epsilons, rotary-position constants, routing details that keep top-k),
or the config is refused naming it. A feature switched off (`sliding_window: null`,
`use_sliding_window: false`) is accepted; switched on where it is not modelled, refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..errors import shown as shown_value

ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu",
    "gelu_fast": "gelu",
    "gelu_pytorch_tanh": "gelu",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
    "tanh": "tanh",
}
BERT_LIKE = ("bert", "roberta", "electra", "albert")
LLAMA_LIKE = ("llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "gemma2")
SUPPORTED = (*BERT_LIKE, "gpt2", *LLAMA_LIKE, "deepseek_v3", "t5")
STRICT = (*LLAMA_LIKE, "deepseek_v3")  # every field read, inert, or refused by name
# fields that change no cost the tool models (read by no one, refused by no one)
INERT = frozenset(
    {
        # bookkeeping and the framework's own settings
        "_name_or_path",
        "architectures",
        "auto_map",
        "transformers_version",
        "torch_dtype",  # the checkpoint's dtype; the run's --dtype / --weights decide
        "dtype",
        "quantization_config",  # the stored format; the run's --weights decides
        "use_cache",
        "cache_implementation",
        "pretraining_tp",  # how Llama 2's pretraining split a GEMM: the same FLOPs
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
        "initializer_range",
        # numerics of the same operations
        "rms_norm_eps",
        "rope_theta",
        "rope_scaling",  # rotary frequencies (YaRN, Llama 3): positions, not costs
        "attention_dropout",  # inference configs: 0.0 (training dropout is --dropout)
        "query_pre_attn_scalar",  # Gemma 2's score scale: folded into the softmax scale
        # routing details: which experts win, not how many (top-k is num_experts_per_tok)
        "norm_topk_prob",
        "routed_scaling_factor",
        "scoring_func",
        "n_group",
        "topk_group",
        "output_router_logits",
        "router_aux_loss_coef",
        "aux_loss_alpha",
        "seq_aux",
        "ep_size",  # the checkpoint's expert-parallel size; the layout is the run's
    }
)
# architecture field -> the config's field it comes from, per family of model_type
_BERT_NAMES = {
    "layers": "num_hidden_layers",
    "hidden": "hidden_size",
    "heads": "num_attention_heads",
    "ffn": "intermediate_size",
    "vocab": "vocab_size",
    "max_positions": "max_position_embeddings",
    "type_vocab": "type_vocab_size",
    "embedding_dim": "embedding_size",
}
_GPT2_NAMES = {
    "layers": "n_layer",
    "hidden": "n_embd",
    "heads": "n_head",
    "ffn": "n_inner",
    "vocab": "vocab_size",
    "max_positions": "n_positions",
}
_LLAMA_NAMES = {
    "layers": "num_hidden_layers",
    "hidden": "hidden_size",
    "heads": "num_attention_heads",
    "kv_heads": "num_key_value_heads",
    "ffn": "intermediate_size",
    "vocab": "vocab_size",
    "max_positions": "max_position_embeddings",
    "head_dim": "head_dim",
    "experts": "num_local_experts",
    "top_k": "num_experts_per_tok",
    "sliding_window": "sliding_window",
    "moe_ffn": "moe_intermediate_size",
}
_DEEPSEEK_NAMES = {
    "layers": "num_hidden_layers",
    "hidden": "hidden_size",
    "heads": "num_attention_heads",
    "kv_heads": "num_key_value_heads",
    "ffn": "intermediate_size",
    "vocab": "vocab_size",
    "max_positions": "max_position_embeddings",
    "head_dim": "qk_nope_head_dim",
    "experts": "n_routed_experts",
    "top_k": "num_experts_per_tok",
    "moe_ffn": "moe_intermediate_size",
    "shared_experts": "n_shared_experts",
    "dense_layers": "first_k_dense_replace",
    "moe_every": "moe_layer_freq",
    "q_lora_rank": "q_lora_rank",
    "kv_lora_rank": "kv_lora_rank",
    "qk_rope_head_dim": "qk_rope_head_dim",
    "v_head_dim": "v_head_dim",
    "mtp_layers": "num_nextn_predict_layers",
}
_T5_NAMES = {
    "layers": "num_layers",
    "decoder_layers": "num_decoder_layers",
    "hidden": "d_model",
    "heads": "num_heads",
    "head_dim": "d_kv",
    "ffn": "d_ff",
    "vocab": "vocab_size",
    "max_positions": "n_positions",
    "relative_buckets": "relative_attention_num_buckets",
}


class _Config:
    """Field access that records every missing or mistyped field."""

    def __init__(self, data: dict[str, Any], model_type: str) -> None:
        self.data = data
        self.model_type = model_type
        self.problems: list[str] = []
        self.read: set[str] = set()  # the fields looked at (STRICT refuses the others)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return self.data.get(key, default)

    def off(self, key: str, value: Any = None, why: str = "") -> None:
        """A field whose feature the tool does not model: accepted while it holds `value`
        (the feature switched off), refused by name otherwise."""
        got = self.get(key, value)
        if got != value and not (value is None and got is False):
            self.problems.append(
                f"{key}: {shown_value(got)} is not modelled for model_type "
                f"{shown_value(self.model_type)}{why}; roofline reads it only as "
                f"{shown_value(value)}"
            )

    def unread(self) -> list[str]:
        """Problems for the fields neither read nor INERT (STRICT model types)."""
        return [
            f"{key}: not modelled by roofline for model_type {shown_value(self.model_type)} "
            "(refused rather than ignored)"
            for key in self.data
            if key not in self.read and key not in INERT and key != "model_type"
        ]

    def window(self, key: str) -> int:
        """A window size or null (0: no window)."""
        if self.get(key) is None:
            return 0
        return self.int(key)

    def int(self, key: str, default: int | None = None) -> int:
        value = self.get(key, default)
        if value is None:
            self.problems.append(
                f"{key}: missing (needed for model_type {shown_value(self.model_type)})"
            )
            return 1
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.problems.append(f"{key}: expected a whole number >= 1, got {shown_value(value)}")
            return 1
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            self.problems.append(f"{key}: expected true or false, got {shown_value(value)}")
            return default
        return value

    def act(self, key: str, default: str | None = None) -> str:
        value = self.get(key, default)
        if value not in ACTIVATIONS:
            allowed = ", ".join(sorted(ACTIVATIONS))
            self.problems.append(
                f"{key}: activation {shown_value(value)} is not supported; allowed: {allowed}"
            )
            return "gelu"
        return ACTIVATIONS[value]


def architecture(data: dict[str, Any], source: str) -> tuple[dict[str, Any], list[str]]:
    """The transformer `architecture:` mapping for a config, and the problems found."""
    model_type = data.get("model_type")
    if model_type not in SUPPORTED:
        supported = ", ".join(SUPPORTED)
        problem = f"model_type: {shown_value(model_type)} is not supported; supported: {supported}"
        raise SpecError(source, [problem])
    c = _Config(data, model_type)
    if model_type in BERT_LIKE:
        arch: dict[str, Any] = {
            "type": "encoder",
            "layers": c.int("num_hidden_layers"),
            "hidden": c.int("hidden_size"),
            "heads": c.int("num_attention_heads"),
            "ffn": c.int("intermediate_size"),
            "activation": c.act("hidden_act", "gelu"),
            "vocab": c.int("vocab_size"),
            "max_positions": c.int("max_position_embeddings", 512),
            "position": "learned",
            "type_vocab": c.int("type_vocab_size", 2),
            "norm": "layernorm",
            "norm_position": "post",
            "embedding_norm": True,
            "bias": True,
            "head": "none" if model_type == "electra" else "pooler",
        }
        if model_type == "albert":
            arch["embedding_dim"] = c.int("embedding_size", 128)
            arch["shared_layers"] = c.int("num_hidden_groups", 1) == 1
    elif model_type == "gpt2":
        hidden = c.int("n_embd")
        arch = {
            "type": "decoder",
            "layers": c.int("n_layer"),
            "hidden": hidden,
            "heads": c.int("n_head"),
            "ffn": c.int("n_inner", 4 * hidden) if data.get("n_inner") else 4 * hidden,
            "activation": c.act("activation_function", "gelu_new"),
            "vocab": c.int("vocab_size"),
            "max_positions": c.int("n_positions", 1024),
            "position": "learned",
            "norm": "layernorm",
            "norm_position": "pre",
            "bias": True,
            "head": "lm",
            "tie_embeddings": c.flag("tie_word_embeddings", True),
        }
    elif model_type in LLAMA_LIKE:
        arch = _llama_like(c, model_type)
    elif model_type == "deepseek_v3":
        arch = _deepseek_v3(c)
    else:  # t5
        proj = data.get("feed_forward_proj", "relu")
        gated = isinstance(proj, str) and proj.startswith("gated-")
        act = proj[len("gated-") :] if gated else proj
        layers = c.int("num_layers")
        arch = {
            "type": "encoder-decoder",
            "layers": layers,
            "decoder_layers": c.int("num_decoder_layers", layers),
            "hidden": c.int("d_model"),
            "heads": c.int("num_heads"),
            "head_dim": c.int("d_kv", 64),
            "ffn": c.int("d_ff"),
            "ffn_gated": gated,
            "activation": _Config({"feed_forward_proj": act}, "t5").act("feed_forward_proj"),
            "vocab": c.int("vocab_size"),
            "max_positions": c.int("n_positions", 512),
            "position": "relative",
            "relative_buckets": c.int("relative_attention_num_buckets", 32),
            "norm": "rmsnorm",
            "norm_position": "pre",
            "bias": False,
            "head": "lm",
            "tie_embeddings": c.flag("tie_word_embeddings", True),
        }
    if model_type in STRICT:
        c.problems.extend(c.unread())
    return arch, c.problems


def _llama_like(c: _Config, model_type: str) -> dict[str, Any]:
    """Llama and the decoders shaped like it: rotary positions, RMS norms, SwiGLU (GeGLU
    for Gemma 2), grouped-query attention, with each type's own additions."""
    heads = c.int("num_attention_heads")
    gemma = model_type == "gemma2"
    act_key = "hidden_activation" if gemma and c.data.get("hidden_activation") else "hidden_act"
    if gemma:
        c.read.add("hidden_act")  # Gemma 2 configs carry both; hidden_activation wins
    arch: dict[str, Any] = {
        "type": "decoder",
        "layers": c.int("num_hidden_layers"),
        "hidden": c.int("hidden_size"),
        "heads": heads,
        "kv_heads": c.int("num_key_value_heads", heads),
        "ffn": c.int("intermediate_size"),
        "ffn_gated": True,
        "activation": c.act(act_key, "gelu_pytorch_tanh" if gemma else "silu"),
        "vocab": c.int("vocab_size"),
        "max_positions": c.int("max_position_embeddings"),
        "position": "rotary",
        "norm": "rmsnorm",
        "norm_position": "pre",
        "bias": False,
        "head": "lm",
        "tie_embeddings": c.flag("tie_word_embeddings", gemma),
    }
    if c.get("head_dim"):
        arch["head_dim"] = c.int("head_dim")
    if model_type == "qwen2":
        arch["qkv_bias"] = True  # Qwen2 has biases on q, k, v only (no config field)
    else:  # a bias on q, k, v and o (and Llama's mlp_bias) is not modelled
        c.off("attention_bias", False, " (biases on q, k, v and o)")
    c.off("mlp_bias", False, " (biases in the MLP)")
    if model_type in ("qwen2", "qwen3", "qwen3_moe"):
        # a sliding window on the layers from max_window_layers, when switched on
        c.off("use_sliding_window", False, " (Qwen's windowed layers)")
        c.read.update(("sliding_window", "max_window_layers"))  # inert while it is off
    elif model_type in ("mistral", "mixtral"):
        window = c.window("sliding_window")
        if window:
            arch["sliding_window"] = window  # every layer local (Mistral 7B v0.1: 4096)
    if model_type in ("qwen3", "qwen3_moe"):
        arch["qk_norm"] = True
    if model_type == "mixtral":
        arch["experts"] = c.int("num_local_experts")
        arch["top_k"] = c.int("num_experts_per_tok")
    if model_type == "qwen3_moe":
        arch["experts"] = c.int("num_experts")
        arch["top_k"] = c.int("num_experts_per_tok")
        arch["moe_ffn"] = c.int("moe_intermediate_size")
        c.off("decoder_sparse_step", 1, " (MoE on every n-th layer, counted from the 2nd)")
        c.off("mlp_only_layers", [], " (chosen layers dense)")
    if gemma:
        window = c.window("sliding_window")
        if c.get("sliding_window_size") not in (None, window):
            c.problems.append(
                f"sliding_window_size: {shown_value(c.data['sliding_window_size'])} differs "
                f"from sliding_window ({window})"
            )
        if window:  # Gemma 2: even layers local, odd layers global (1 of every 2)
            arch["sliding_window"] = window
            arch["global_every"] = 2
        arch["attn_softcap"] = c.get("attn_logit_softcapping") is not None
        arch["logit_softcap"] = c.get("final_logit_softcapping") is not None
        arch["post_norms"] = True
    return arch


def _deepseek_v3(c: _Config) -> dict[str, Any]:
    """DeepSeek-V3: MLA, DeepSeekMoE (shared + fine-grained routed experts, dense first
    layers, a bias on the router's sigmoid scores with topk_method noaux_tc) and MTP."""
    heads = c.int("num_attention_heads")
    q_lora = c.get("q_lora_rank")
    arch: dict[str, Any] = {
        "type": "decoder",
        "layers": c.int("num_hidden_layers"),
        "hidden": c.int("hidden_size"),
        "heads": heads,
        "kv_heads": c.int("num_key_value_heads", heads),
        "head_dim": c.int("qk_nope_head_dim"),
        "ffn": c.int("intermediate_size"),
        "ffn_gated": True,
        "activation": c.act("hidden_act", "silu"),
        "vocab": c.int("vocab_size"),
        "max_positions": c.int("max_position_embeddings"),
        "position": "rotary",
        "norm": "rmsnorm",
        "norm_position": "pre",
        "bias": False,
        "head": "lm",
        "tie_embeddings": c.flag("tie_word_embeddings", False),
        "kv_lora_rank": c.int("kv_lora_rank"),
        "qk_rope_head_dim": c.int("qk_rope_head_dim"),
        "v_head_dim": c.int("v_head_dim"),
        "experts": c.int("n_routed_experts"),
        "top_k": c.int("num_experts_per_tok"),
        "moe_ffn": c.int("moe_intermediate_size"),
        "moe_every": c.int("moe_layer_freq", 1),
        "router_bias": c.get("topk_method") == "noaux_tc",  # e_score_correction_bias
    }
    if q_lora is not None:
        arch["q_lora_rank"] = c.int("q_lora_rank")
    for key, field in (
        ("shared_experts", "n_shared_experts"),
        ("dense_layers", "first_k_dense_replace"),
        ("mtp_layers", "num_nextn_predict_layers"),
    ):
        if c.get(field):
            arch[key] = c.int(field)
    c.off("attention_bias", False, " (biases on q, k, v and o)")
    return arch


MAX_CONFIG_BYTES = 10_000_000  # real config.json files are a few kB


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different (json keeps the last of two silently; a
    YAML file with a duplicate key is refused, and so is a config)."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise _DuplicateKey(key)
        data[key] = value
    return data


def config_names(data: dict[str, Any]) -> dict[str, str]:
    """The config's own name of each architecture field it sets (`kv_heads` ->
    `num_key_value_heads`), so that a problem found later names what the user wrote."""
    model_type = data.get("model_type")
    if model_type in BERT_LIKE:
        names = dict(_BERT_NAMES)
    elif model_type == "gpt2":
        names = dict(_GPT2_NAMES)
    elif model_type in LLAMA_LIKE:
        names = dict(_LLAMA_NAMES)
        if model_type == "qwen3_moe":
            names["experts"] = "num_experts"
    elif model_type == "deepseek_v3":
        names = dict(_DEEPSEEK_NAMES)
    elif model_type == "t5":
        names = dict(_T5_NAMES)
    else:
        names = {}
    return names


def renamed(problem: str, names: dict[str, str]) -> str:
    """A problem of the architecture schema in the config's own field names."""
    for inner, outer in names.items():
        problem = re.sub(rf"\barchitecture\.{inner}\b", outer, problem)
        problem = re.sub(rf"(?<![.\w]){inner}\b", outer, problem)
    return problem


def load_hf_config(path: Path, shown: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A workload document (as a workload YAML file would hold) from a config.json, and the
    config's own name of each architecture field (config_names)."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise SpecError(shown, [f"larger than {MAX_CONFIG_BYTES:,} bytes: not a config.json"])
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_unique)
    except _DuplicateKey as exc:
        raise SpecError(
            shown, [f"duplicate key {shown_value(exc.key)}: a config names each field once"]
        ) from None
    except OSError as exc:
        raise SpecError(shown, [f"cannot read file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise SpecError(shown, ["not a UTF-8 text file (is it a config.json?)"]) from None
    except json.JSONDecodeError as exc:
        raise SpecError(shown, [f"line {exc.lineno}: malformed JSON: {exc.msg}"]) from None
    except ValueError as exc:  # an integer of more than 4,300 digits (Python's own limit)
        raise SpecError(shown, [f"a number too long to read: {str(exc)[:80]}"]) from None
    except RecursionError:
        raise SpecError(shown, ["nested too deeply to be a model config"]) from None
    if not isinstance(data, dict):
        raise SpecError(shown, ["top level must be a JSON object"])
    arch, problems = architecture(data, shown)
    if problems:
        raise SpecError(shown, problems)
    name = data.get("_name_or_path") or f"{data['model_type']} ({path.name})"
    doc = {
        "name": str(name),
        "family": "transformer",
        "architecture": arch,
        "sources": [f"Hugging Face config {shown}"],
    }
    return doc, config_names(data)
