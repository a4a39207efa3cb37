"""The transformer family: encoders (BERT), decoders (GPT), with multi-, grouped- or
multi-query attention and plain or gated (SwiGLU) feed-forward blocks.

`parse_architecture` validates the `architecture:` mapping of a workload file;
`build` turns it and a RunConfig into a LayerTable. The transformer block is one set of rows
with `count = layers`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._schema import Fields
from ..dtypes import BYTES_PER_ELEMENT
from ..errors import RooflineError
from ..layers import LayerTable, LayerTableBuilder, with_backward
from ..scenario import RunConfig
from . import costs

TYPES = ("encoder", "decoder")
POSITIONS = ("learned", "sinusoidal", "rotary", "relative")
HEADS = ("none", "pooler", "lm")


@dataclass(frozen=True)
class TransformerArch:
    type: str  # encoder (bidirectional) | decoder (causal)
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    ffn_gated: bool  # gated FFN (SwiGLU): two up projections and an elementwise product
    activation: str
    vocab: int
    max_positions: int
    position: str
    type_vocab: int
    norm: str
    norm_position: str  # pre | post
    bias: bool
    head: str  # none | pooler | lm
    tie_embeddings: bool

    @property
    def default_seq(self) -> int:
        return self.max_positions

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim


def parse_architecture(f: Fields) -> TransformerArch | None:
    arch_type = f.choice("type", TYPES)
    layers = f.integer("layers")
    hidden = f.integer("hidden")
    heads = f.integer("heads")
    kv_heads = f.integer("kv_heads", required=False, default=heads)
    head_dim = f.integer("head_dim", required=False)
    ffn = f.integer("ffn")
    ffn_gated = f.flag("ffn_gated", default=False)
    activation = f.choice("activation", tuple(costs.ACTIVATIONS))
    vocab = f.integer("vocab")
    max_positions = f.integer("max_positions")
    position = f.choice("position", POSITIONS)
    type_vocab = f.integer("type_vocab", required=False, minimum=0, default=0)
    norm = f.choice("norm", tuple(costs.NORMS))
    norm_position = f.choice("norm_position", ("pre", "post"))
    bias = f.flag("bias", default=True)
    head = f.choice("head", HEADS)
    tie = f.flag("tie_embeddings", default=True)
    f.done()
    if None in (layers, hidden, heads, ffn, vocab, max_positions, kv_heads) or not arch_type:
        return None
    assert hidden and heads and kv_heads  # narrowed by the line above
    if head_dim is None:
        if hidden % heads:
            f.fail("heads", f"hidden ({hidden}) must be a multiple of heads ({heads})")
            return None
        head_dim = hidden // heads
    if heads % kv_heads:
        f.fail("kv_heads", f"heads ({heads}) must be a multiple of kv_heads ({kv_heads})")
        return None
    return TransformerArch(
        type=arch_type,
        layers=layers,  # type: ignore[arg-type]
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        ffn=ffn,  # type: ignore[arg-type]
        ffn_gated=ffn_gated,
        activation=activation,
        vocab=vocab,  # type: ignore[arg-type]
        max_positions=max_positions,  # type: ignore[arg-type]
        position=position,
        type_vocab=type_vocab or 0,
        norm=norm,
        norm_position=norm_position,
        bias=bias,
        head=head,
        tie_embeddings=tie,
    )


def build(arch: TransformerArch, run: RunConfig, model: str) -> LayerTable:
    """Per-layer costs of one forward pass (or training step) over `batch` x `seq` tokens."""
    seq = run.seq if run.seq is not None else arch.default_seq
    if seq > arch.max_positions:
        raise RooflineError(
            f"--seq {seq}: {model} takes at most {arch.max_positions} tokens "
            f"(architecture.max_positions)"
        )
    b, s, h = run.batch, seq, arch.hidden
    t = b * s  # tokens in the batch
    q_dim = arch.heads * arch.head_dim
    kv = arch.kv_dim
    s_kv = s  # every query attends over the whole sequence (the causal mask is not skipped)
    scores = b * arch.heads * s * s_kv  # elements of the attention score matrix
    bias = 1 if arch.bias else 0
    norm_flops = costs.NORMS[arch.norm]
    norm_params = costs.NORM_PARAMS_PER_CHANNEL[arch.norm] * h
    act = costs.ACTIVATIONS[arch.activation]
    out = LayerTableBuilder()

    def linear(name: str, tokens: int, d_in: int, d_out: int, count: int) -> None:
        """y = x W (+ b): a GEMM with tokens x d_in x d_out multiply-adds."""
        params = d_in * d_out + bias * d_out
        out.add(
            name,
            "matmul",
            flops=2 * tokens * d_in * d_out + bias * tokens * d_out,
            weights=params,
            inputs=tokens * d_in,
            outputs=tokens * d_out,
            params=params,
            count=count,
        )

    def norm(name: str, count: int) -> None:
        out.add(
            name,
            "norm",
            flops=norm_flops * t * h,
            weights=norm_params,
            inputs=t * h,
            outputs=t * h,
            params=norm_params,
            count=count,
        )

    # --- embeddings: gather the rows of each table for every token, and sum them
    tables = 1 + (arch.position == "learned") + (arch.type_vocab > 0)
    table_rows = arch.vocab + (arch.max_positions if arch.position == "learned" else 0)
    table_rows += arch.type_vocab
    out.add(
        "embeddings",
        "embedding",
        flops=(tables - 1) * t * h,
        weights=tables * t * h,  # only the rows that are looked up are read
        inputs=0,
        outputs=t * h,
        params=table_rows * h,
    )
    if arch.norm_position == "post":
        norm("embeddings.norm", 1)

    # --- the transformer block, stored once with count = layers
    n = arch.layers
    if arch.norm_position == "pre":
        norm("block.attn_norm", n)
    linear("block.qkv_proj", t, h, q_dim + 2 * kv, n)
    out.add(
        "block.attn_scores",  # Q K^T per head
        "attention",
        flops=2 * scores * arch.head_dim,
        inputs=t * q_dim + b * s_kv * kv,
        outputs=scores,
        count=n,
    )
    out.add(
        "block.attn_softmax",
        "softmax",
        flops=costs.SOFTMAX * scores,
        inputs=scores,
        outputs=scores,
        count=n,
    )
    out.add(
        "block.attn_context",  # P V per head
        "attention",
        flops=2 * scores * arch.head_dim,
        inputs=scores + b * s_kv * kv,
        outputs=t * q_dim,
        count=n,
    )
    linear("block.attn_out_proj", t, q_dim, h, n)
    out.add(
        "block.attn_residual",
        "elementwise",
        flops=costs.ADD * t * h,
        inputs=2 * t * h,
        outputs=t * h,
        count=n,
    )
    if arch.norm_position == "post":
        norm("block.attn_norm", n)
    else:
        norm("block.ffn_norm", n)
    up = 2 * arch.ffn if arch.ffn_gated else arch.ffn
    linear("block.ffn_up", t, h, up, n)
    out.add(
        "block.ffn_act",
        "activation",
        flops=(act + (1 if arch.ffn_gated else 0)) * t * arch.ffn,  # gate: one more multiply
        inputs=t * up,
        outputs=t * arch.ffn,
        count=n,
    )
    linear("block.ffn_down", t, arch.ffn, h, n)
    out.add(
        "block.ffn_residual",
        "elementwise",
        flops=costs.ADD * t * h,
        inputs=2 * t * h,
        outputs=t * h,
        count=n,
    )
    if arch.norm_position == "post":
        norm("block.ffn_norm", n)
    else:
        norm("final_norm", 1)

    # --- head
    if arch.head == "pooler":  # dense + tanh on the first token of every sequence
        params = h * h + bias * h
        out.add(
            "pooler",
            "matmul",
            flops=2 * b * h * h + bias * b * h + costs.TANH * b * h,
            weights=params,
            inputs=b * h,
            outputs=b * h,
            params=params,
        )
    elif arch.head == "lm":  # logits over the vocabulary for every token
        out.add(
            "lm_head",
            "matmul",
            flops=2 * t * h * arch.vocab,
            weights=h * arch.vocab,
            inputs=t * h,
            outputs=t * arch.vocab,
            params=0 if arch.tie_embeddings else h * arch.vocab,
        )

    table = out.build(BYTES_PER_ELEMENT[run.dtype])
    return with_backward(table) if run.phase == "training" else table
