"""The transformer family: encoders (BERT, ViT), decoders (GPT, Llama), encoder-decoders
(the original Transformer, T5), with multi-, grouped- or multi-query attention, plain or gated
(SwiGLU) feed-forward blocks, mixture-of-experts layers, shared layers (ALBERT) and a
factorised embedding.

`parse_architecture` validates the `architecture:` mapping of a workload file; `build` turns it
and a RunConfig into a LayerTable. Each stack's block is one set of rows with
`count = layers`.

This module is long (over 400 lines) on purpose: one family's parser, protocol answers and
builder, whose rows must agree with each other, read best in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._schema import Fields
from ..errors import FieldError
from ..layers import FUSED_ATTENTION, LayerTable, LayerTableBuilder
from ..scenario import RunConfig
from . import costs
from .base import Architecture, TensorSplit

TYPES = ("encoder", "decoder", "encoder-decoder")
POSITIONS = ("learned", "sinusoidal", "rotary", "relative")
HEADS = ("none", "pooler", "lm", "classifier")


@dataclass(frozen=True)
class TransformerArch(Architecture):
    family: ClassVar[str] = "transformer"
    type: str  # encoder (bidirectional) | decoder (causal) | encoder-decoder
    layers: int  # encoder layers for encoder-decoders
    decoder_layers: int  # encoder-decoders only (0 otherwise)
    hidden: int
    heads: int
    kv_heads: int  # < heads: grouped-query attention; 1: multi-query
    head_dim: int
    ffn: int
    ffn_gated: bool  # two up projections and an elementwise product (SwiGLU, GEGLU)
    activation: str
    vocab: int
    max_positions: int
    position: str
    type_vocab: int
    norm: str
    norm_position: str  # pre | post
    embedding_norm: bool  # a norm right after the embeddings (BERT family)
    bias: bool
    dropout: bool  # trained with dropout: its masks (and attention's dropped copy) are kept
    head: str
    classes: int  # classifier head
    tie_embeddings: bool
    shared_layers: bool  # ALBERT: every layer of a stack uses the same weights
    embedding_dim: int  # ALBERT: factorised embedding, projected up to `hidden`
    experts: int  # mixture of experts: 0 for dense
    top_k: int
    moe_every: int  # an MoE layer every n-th layer (1: all)
    relative_buckets: int  # T5 relative position bias
    image_size: int  # vision transformers: square image, patches of `patch_size`
    patch_size: int
    channels: int

    @property
    def default_seq(self) -> int:
        if self.patch_size:
            return (self.image_size // self.patch_size) ** 2 + 1  # patches + class token
        return self.max_positions

    @property
    def takes_seq(self) -> bool:
        """A text model takes --seq; a vision transformer's token count is fixed."""
        return not self.patch_size

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def max_seq(self) -> int | None:
        return self.max_positions if self.takes_seq else None

    @property
    def blocks(self) -> int:
        return self.layers + self.decoder_layers

    @property
    def tensor_split(self) -> TensorSplit:
        """Megatron-LM: attention heads (and K/V heads) and the feed-forward width are split;
        each block all-reduces its output after attention and after the MLP. A single K/V
        head (multi-query attention) is replicated on every rank, as PaLM and Megatron-LM
        do; its small projection is counted as split like the rest (an approximation)."""
        kv = (("kv_heads", self.kv_heads),) if self.kv_heads > 1 else ()
        dims = (("heads", self.heads), *kv, ("ffn", self.ffn))
        return TensorSplit(dims, allreduces_per_block=2)

    def _seq(self, run: RunConfig) -> int:
        return run.seq if run.seq is not None else self.default_seq

    def kv_cache_elements(self, run: RunConfig) -> float:
        """K and V of every decoder layer per sample: `seq` tokens after a prefill; in a
        decode step the `context` cached tokens and the new one's; for encoder-decoders
        also the cross-attention K and V over the `seq` source tokens."""
        if self.type == "encoder":
            return 0.0
        seq = self._seq(run)
        tokens = (run.context if run.context is not None else seq) + (
            1 if run.phase == "decode" else 0
        )
        layers = self.layers if self.type == "decoder" else self.decoder_layers
        cross = seq if self.type == "encoder-decoder" else 0
        return float(run.batch * 2 * layers * self.kv_dim * (tokens + cross))

    def boundary_elements(self, run: RunConfig) -> float:
        """The hidden state of every token in flight: batch x (1 in decode, else seq) x hidden."""
        tokens = 1 if run.phase == "decode" else self._seq(run)
        return float(run.batch * tokens * self.hidden)

    def active_params(self, table: LayerTable) -> float:
        """All parameters but the share of expert weights a token is not routed to."""
        if not self.experts:
            return table.total_params
        expert = np.char.find(table.name.astype(str), ".expert_") >= 0
        idle = (self.experts - self.top_k) / self.experts
        return float(table.total_params - idle * np.sum(table.params[expert]))

    def attention_core(self, table: LayerTable) -> np.ndarray:
        """The rows between the QKV projection and the output projection: scores, softmax
        and context (or the fused flash kernel) of self- and cross-attention."""
        core = ("scores", "softmax", "context", "flash")
        return np.array(
            [
                n.rsplit(".", 2)[-2:][0] in ("attn", "cross") and n.rsplit(".", 1)[-1] in core
                for n in table.name.astype(str)
            ],
            dtype=bool,
        )

    def build(self, run: RunConfig, model: str) -> LayerTable:
        return build(self, run, model)


def parse_architecture(f: Fields) -> TransformerArch | None:
    arch_type = f.choice("type", TYPES)
    layers = f.integer("layers")
    decoder_layers = f.integer("decoder_layers", required=arch_type == "encoder-decoder", default=0)
    hidden = f.integer("hidden")
    heads = f.integer("heads")
    kv_heads = f.integer("kv_heads", required=False, default=heads)
    head_dim = f.integer("head_dim", required=False)
    ffn = f.integer("ffn")
    ffn_gated = f.flag("ffn_gated", default=False)
    activation = f.choice("activation", tuple(costs.ACTIVATIONS))
    vocab = f.integer("vocab", required=False, default=0, minimum=0)
    max_positions = f.integer("max_positions", required=False, default=0, minimum=0)
    position = f.choice("position", POSITIONS)
    type_vocab = f.integer("type_vocab", required=False, minimum=0, default=0)
    norm = f.choice("norm", tuple(costs.NORMS))
    norm_position = f.choice("norm_position", ("pre", "post"))
    embedding_norm = f.flag("embedding_norm", default=False)
    bias = f.flag("bias", default=True)
    dropout = f.flag("dropout", default=False)
    head = f.choice("head", HEADS)
    classes = f.integer("classes", required=head == "classifier", default=0)
    tie = f.flag("tie_embeddings", default=True)
    shared = f.flag("shared_layers", default=False)
    embedding_dim = f.integer("embedding_dim", required=False, default=hidden)
    experts = f.integer("experts", required=False, default=0, minimum=0)
    top_k = f.integer("top_k", required=bool(experts), default=0)
    moe_every = f.integer("moe_every", required=False, default=1)
    buckets = f.integer("relative_buckets", required=False, default=0, minimum=0)
    image_size = f.integer("image_size", required=False, default=0)
    patch_size = f.integer("patch_size", required=False, default=0)
    channels = f.integer("channels", required=bool(patch_size), default=0)
    f.done()
    needed = (layers, hidden, heads, ffn, kv_heads, embedding_dim, top_k, moe_every, vocab)
    if None in needed or not arch_type or max_positions is None:
        return None
    assert hidden and heads and kv_heads and layers and ffn  # narrowed by the line above
    ok = True
    if head_dim is None:
        if hidden % heads:
            f.fail("heads", f"hidden ({hidden}) must be a multiple of heads ({heads})")
            ok = False
        head_dim = hidden // heads
    if heads % kv_heads:
        f.fail("kv_heads", f"heads ({heads}) must be a multiple of kv_heads ({kv_heads})")
        ok = False
    if experts and not 1 <= (top_k or 0) <= experts:
        f.fail("top_k", f"must be between 1 and experts ({experts}), got {top_k}")
        ok = False
    if patch_size and (not image_size or image_size % patch_size):
        f.fail("image_size", f"must be a multiple of patch_size ({patch_size}), got {image_size}")
        ok = False
    if not patch_size and not vocab:
        f.fail("vocab", "missing (a text model needs a vocabulary)")
        ok = False
    if not patch_size and not max_positions:
        f.fail("max_positions", "missing (the longest sequence the model takes)")
        ok = False
    if head == "lm" and arch_type == "encoder":
        f.fail("head", "an lm head needs a decoder; an encoder takes pooler, classifier or none")
        ok = False
    if not ok:
        return None
    if patch_size:
        max_positions = (image_size // patch_size) ** 2 + 1  # type: ignore[operator]
    return TransformerArch(
        type=arch_type,
        layers=layers,
        decoder_layers=decoder_layers or 0,
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        ffn=ffn,
        ffn_gated=ffn_gated,
        activation=activation,
        vocab=vocab or 0,
        max_positions=max_positions,
        position=position,
        type_vocab=type_vocab or 0,
        norm=norm,
        norm_position=norm_position,
        embedding_norm=embedding_norm,
        bias=bias,
        dropout=dropout,
        head=head,
        classes=classes or 0,
        tie_embeddings=tie,
        shared_layers=shared,
        embedding_dim=embedding_dim or hidden,
        experts=experts or 0,
        top_k=top_k or 0,
        moe_every=moe_every or 1,
        relative_buckets=buckets or 0,
        image_size=image_size or 0,
        patch_size=patch_size or 0,
        channels=channels or 0,
    )


def expected_experts_touched(experts: int, top_k: int, tokens: int) -> float:
    """Experts that at least one of `tokens` tokens is routed to, each token picking `top_k`
    of `experts` uniformly: E * (1 - (1 - k/E)^tokens). Their weights are what is read."""
    return experts * (1.0 - (1.0 - top_k / experts) ** tokens)


class _Stack:
    """Emits the rows of one transformer stack into a LayerTableBuilder."""

    def __init__(
        self,
        arch: TransformerArch,
        out: LayerTableBuilder,
        batch: int,
        flash: bool,
        replicated: int = 1,
    ) -> None:
        self.a = arch
        self.out = out
        self.b = batch
        self.flash = flash  # one fused attention kernel (FlashAttention)
        self.bias = 1 if arch.bias else 0
        # tensor ranks that each run the norms and residual adds whole, and keep whole the
        # inputs of the column-parallel projections and the dropout masks after the
        # row-parallel ones (tensor parallelism without sequence parallelism: Korthikanti
        # et al. 2022, the 10 s b h of eq. 2); the replica's table counts them once a rank
        self.r = replicated

    def linear(
        self,
        name: str,
        tokens: int,
        d_in: int,
        d_out: int,
        count: int,
        shared: bool,
        masks: float = 0.0,
        column: bool = False,
    ) -> None:
        """y = x W (+ b) with the model's bias setting. `column`: a column-parallel
        projection (its input, read and kept, is whole on every tensor rank without
        sequence parallelism); `masks` after a row-parallel one are whole too."""
        whole = self.r if column else 1  # a column-parallel GEMM reads its input whole
        self.out.linear(
            name,
            tokens,
            d_in,
            d_out,
            bias=bool(self.bias),
            count=count,
            shared=shared,
            masks=masks * self.r,
            saved=tokens * d_in * whole,
            inputs=tokens * d_in * whole,
        )

    def _aux(self, pre_activation: float) -> float:
        """What an activation fused into its GEMM's epilogue writes besides its output in
        training: the pre-activation its backward needs (none for a plain ReLU, whose
        output tells its derivative)."""
        return 0.0 if self.a.activation == "relu" and not self.a.ffn_gated else pre_activation

    def norm(self, name: str, tokens: int, dim: int, count: int, shared: bool) -> None:
        params = costs.NORM_PARAMS_PER_CHANNEL[self.a.norm] * dim
        r = self.r
        self.out.add(
            name,
            "norm",
            flops=costs.NORMS[self.a.norm] * tokens * dim * r,
            weights=params * r,
            inputs=tokens * dim * r,
            outputs=tokens * dim * r,
            params=params,
            count=count,
            shared=shared,
            saved=tokens * dim * r,
        )

    def residual(self, name: str, tokens: int, count: int) -> None:
        h = self.a.hidden
        self.out.add(
            name,
            "elementwise",
            flops=costs.ADD * tokens * h * self.r,
            inputs=2 * tokens * h * self.r,
            outputs=tokens * h * self.r,
            count=count,
        )

    def attention(
        self,
        p: str,
        q_len: int,
        kv_len: int,
        count: int,
        *,
        cross: bool,
        project_kv: bool,
        causal: bool = False,
        from_cache: bool = False,
    ) -> None:
        """Self- or cross-attention for `q_len` queries per sample over `kv_len` keys.

        project_kv: the keys and values are computed here (from q_len tokens for
        self-attention, from kv_len encoder tokens for cross-attention); otherwise they come
        from the KV cache, and only the new token's are projected (self-attention decode).
        causal: a decoder's self-attention (a fused kernel skips the masked blocks).
        from_cache: a decode step; the keys and values are read from the KV cache, in the
        cache's storage format.
        """
        a, b, shared = self.a, self.b, self.a.shared_layers
        t = b * q_len
        if cross:
            self.linear(f"{p}.q_proj", t, a.hidden, a.q_dim, count, shared, column=True)
            if project_kv:
                dims = (a.hidden, 2 * a.kv_dim)
                self.linear(f"{p}.kv_proj", b * kv_len, *dims, count, shared, column=True)
        else:
            dims = (a.hidden, a.q_dim + 2 * a.kv_dim)
            self.linear(f"{p}.qkv_proj", t, *dims, count, shared, column=True)
        cached = 1.0 if from_cache else 0.0
        if self.flash:
            self._flash(p, q_len, kv_len, count, causal=causal and q_len == kv_len, cached=cached)
        else:
            self._eager(p, q_len, kv_len, count, cached=cached)
        drop = 1 if a.dropout else 0
        self.linear(f"{p}.out_proj", t, a.q_dim, a.hidden, count, shared, masks=drop * t * a.hidden)

    def _flash(
        self, p: str, q_len: int, kv_len: int, count: int, *, causal: bool, cached: float
    ) -> None:
        """FlashAttention (Dao et al. 2022): scores, softmax and context in one kernel over
        tiles in on-chip memory; DRAM sees Q, K, V in and the context out, never the
        q_len x kv_len matrix. With a causal mask the blocks above the diagonal are skipped:
        (kv_len + 1) / (2 kv_len) of the work. Backward keeps Q, K, V and the softmax
        statistics (one fp32 value a query and head) and recomputes the scores; the output
        is kept by the projection after it. Dropout masks are regenerated, not kept.
        As two chained GEMMs a head group at a time: the query heads that share a key/value
        head (grouped-query attention) are rows of one tile with the group's queries, as
        FlashAttention-3 (pack_gqa), FlashInfer and vLLM's paged-attention kernels run them,
        so a decode step's one query a head does not pad a tile alone."""
        a, b = self.a, self.b
        t = b * q_len
        group = a.heads // a.kv_heads
        share = (kv_len + 1) / (2 * kv_len) if causal else 1.0
        scores = b * a.heads * q_len * kv_len
        kv = 2 * b * kv_len * a.kv_dim
        self.out.add(
            f"{p}{FUSED_ATTENTION}",
            "attention",
            flops=share * (4 * scores * a.head_dim + costs.SOFTMAX * scores),
            inputs=t * a.q_dim + kv,
            outputs=t * a.q_dim,
            count=count,
            saved=t * a.q_dim + kv,  # Q, K, V
            masks=4 * b * a.heads * q_len,  # the fp32 log-sum-exp of each query and head
            gemm=(b * a.kv_heads, group * q_len, a.head_dim, share * 2 * kv_len),
            transcendentals=share * costs.SOFTMAX_TRANSCENDENTALS * scores,
            cached=cached * kv,
        )

    def _eager(self, p: str, q_len: int, kv_len: int, count: int, *, cached: float) -> None:
        """Scores, softmax and context as three kernels; the causal mask is applied, not
        skipped, so the full q_len x kv_len matrix is computed and kept."""
        a, b = self.a, self.b
        t = b * q_len
        scores = b * a.heads * q_len * kv_len
        self.out.add(
            f"{p}.scores",  # Q K^T per head; K read from the projection output or the cache
            "attention",
            flops=2 * scores * a.head_dim,
            inputs=t * a.q_dim + b * kv_len * a.kv_dim,
            outputs=scores,
            count=count,
            saved=t * a.q_dim + b * kv_len * a.kv_dim,  # Q and K
            gemm=(b * a.heads, q_len, kv_len, a.head_dim),
            cached=cached * b * kv_len * a.kv_dim,
        )
        drop = 1 if a.dropout else 0  # attention dropout keeps its mask and its output
        self.out.add(
            f"{p}.softmax",
            "softmax",
            flops=costs.SOFTMAX * scores,
            inputs=scores,
            outputs=scores,
            count=count,
            saved=(1 + drop) * scores,
            transcendentals=costs.SOFTMAX_TRANSCENDENTALS * scores,
            masks=drop * scores,
        )
        self.out.add(
            f"{p}.context",  # P V per head
            "attention",
            flops=2 * scores * a.head_dim,
            inputs=scores + b * kv_len * a.kv_dim,
            outputs=t * a.q_dim,
            count=count,
            saved=b * kv_len * a.kv_dim,  # V (P is the softmax's, counted there)
            gemm=(b * a.heads, q_len, a.head_dim, kv_len),
            cached=cached * b * kv_len * a.kv_dim,
        )

    def ffn(self, p: str, tokens: int, count: int) -> None:
        a, shared = self.a, self.a.shared_layers
        up = 2 * a.ffn if a.ffn_gated else a.ffn
        act = costs.ACTIVATIONS[a.activation] + (1 if a.ffn_gated else 0)  # gate: a multiply
        self.linear(f"{p}.ffn_up", tokens, a.hidden, up, count, shared, column=True)
        self.out.add(
            f"{p}.ffn_act",
            "activation",
            flops=act * tokens * a.ffn,
            inputs=tokens * up,
            outputs=tokens * a.ffn,
            count=count,
            saved=tokens * up,
            transcendentals=costs.TRANSCENDENTALS[a.activation] * tokens * a.ffn,
            fuse_aux=self._aux(tokens * up),  # in ffn_up's epilogue (bias-GELU, SwiGLU)
        )
        masks = tokens * a.hidden if a.dropout else 0
        self.linear(f"{p}.ffn_down", tokens, a.ffn, a.hidden, count, shared, masks=masks)

    def moe(self, p: str, tokens: int, count: int) -> None:
        """Router, then each token through `top_k` of `experts` FFNs, then the weighted sum."""
        a, shared, h = self.a, self.a.shared_layers, self.a.hidden
        k, e = a.top_k, a.experts
        up = 2 * a.ffn if a.ffn_gated else a.ffn
        act = costs.ACTIVATIONS[a.activation] + (1 if a.ffn_gated else 0)
        touched = expected_experts_touched(e, k, tokens)
        routed = tokens * k  # token-expert pairs
        self.out.add(
            f"{p}.router",
            "matmul",
            flops=2 * tokens * h * e,
            weights=h * e,
            inputs=tokens * h * self.r,  # the norm's output, whole on every rank without SP
            outputs=tokens * e,
            params=h * e,
            count=count,
            shared=shared,
            saved=tokens * h * self.r,
            gemm=(1, tokens, e, h),
        )
        self.out.add(
            f"{p}.router_softmax",
            "softmax",
            flops=costs.SOFTMAX * tokens * e,
            inputs=tokens * e,
            outputs=tokens * e,
            count=count,
            saved=tokens * e,
            transcendentals=costs.SOFTMAX_TRANSCENDENTALS * tokens * e,
        )
        up_params = h * up + self.bias * up
        self.out.add(
            f"{p}.expert_up",
            "matmul",
            flops=2 * routed * h * up + self.bias * routed * up,
            weights=touched * up_params,
            inputs=routed * h * self.r,
            outputs=routed * up,
            params=e * up_params,
            count=count,
            shared=shared,
            saved=routed * h * self.r,
            gemm=(touched, routed / touched, up, h),  # tokens spread over the experts reached
        )
        self.out.add(
            f"{p}.expert_act",
            "activation",
            flops=act * routed * a.ffn,
            inputs=routed * up,
            outputs=routed * a.ffn,
            count=count,
            saved=routed * up,
            transcendentals=costs.TRANSCENDENTALS[a.activation] * routed * a.ffn,
            fuse_aux=self._aux(routed * up),  # in expert_up's epilogue
        )
        down_params = a.ffn * h + self.bias * h
        self.out.add(
            f"{p}.expert_down",
            "matmul",
            flops=2 * routed * a.ffn * h + self.bias * routed * h,
            weights=touched * down_params,
            inputs=routed * a.ffn,
            outputs=routed * h,
            params=e * down_params,
            count=count,
            shared=shared,
            saved=routed * a.ffn,
            gemm=(touched, routed / touched, h, a.ffn),
        )
        self.out.add(
            f"{p}.expert_combine",
            "elementwise",
            flops=2 * routed * h,
            inputs=routed * h,
            outputs=tokens * h,
            count=count,
            saved=routed * h,  # expert outputs, for the gate gradients
        )

    def blocks(
        self,
        p: str,
        n: int,
        q_len: int,
        kv_len: int,
        *,
        decode: bool,
        cross_len: int,
        causal: bool = False,
    ) -> None:
        """`n` blocks: self-attention (+ cross-attention over `cross_len` encoder tokens when
        > 0) + FFN, with norms and residual adds; MoE layers every `moe_every`-th block."""
        a, t, shared = self.a, self.b * q_len, self.a.shared_layers
        pre = a.norm_position == "pre"
        n_moe = n // a.moe_every if a.experts else 0
        n_dense = n - n_moe
        if pre:
            self.norm(f"{p}.attn_norm", t, a.hidden, n, shared)
        self.attention(
            f"{p}.attn",
            q_len,
            kv_len,
            n,
            cross=False,
            project_kv=True,
            causal=causal,
            from_cache=decode,
        )
        self.residual(f"{p}.attn_residual", t, n)
        if not pre:
            self.norm(f"{p}.attn_norm", t, a.hidden, n, shared)
        if cross_len:
            if pre:
                self.norm(f"{p}.cross_norm", t, a.hidden, n, shared)
            self.attention(
                f"{p}.cross",
                q_len,
                cross_len,
                n,
                cross=True,
                project_kv=not decode,
                from_cache=decode,
            )
            self.residual(f"{p}.cross_residual", t, n)
            if not pre:
                self.norm(f"{p}.cross_norm", t, a.hidden, n, shared)
        for kind, count in (("ffn", n_dense), ("moe", n_moe)):
            if not count:
                continue
            if pre:
                self.norm(f"{p}.{kind}_norm", t, a.hidden, count, shared)
            if kind == "ffn":
                self.ffn(p, t, count)
            else:
                self.moe(f"{p}.moe", t, count)
            self.residual(f"{p}.{kind}_residual", t, count)
            if not pre:
                self.norm(f"{p}.{kind}_norm", t, a.hidden, count, shared)
        if pre:
            self.norm(f"{p}.final_norm", t, a.hidden, 1, False)

    def embeddings(self, p: str, seq: int, *, params: bool) -> None:
        """Token (+ learned position, + token type) lookups and their sum for b x seq tokens,
        or the patch embedding of a vision transformer. `params`: the table is counted here
        (False for a decoder that shares the encoder's table)."""
        a, b = self.a, self.b
        t = b * seq
        if a.patch_size:
            patches = (a.image_size // a.patch_size) ** 2
            k = a.channels * a.patch_size**2
            conv = a.hidden * k + a.hidden
            self.out.add(
                f"{p}.patch",
                "conv",
                flops=2 * b * patches * k * a.hidden + b * patches * a.hidden,
                weights=conv,
                inputs=b * a.channels * a.image_size**2,
                outputs=b * patches * a.hidden,
                params=conv,
                saved=b * a.channels * a.image_size**2,
                gemm=(1, b * patches, a.hidden, k),
            )
            table = (patches + 1) * a.hidden + a.hidden  # positions + class token
            self.out.add(
                f"{p}.position",
                "elementwise",
                flops=t * a.hidden,
                weights=table,
                inputs=t * a.hidden,
                outputs=t * a.hidden,
                params=table,
            )
            return
        e = a.embedding_dim
        learned = a.position == "learned"
        tables = 1 + learned + (a.type_vocab > 0)
        rows = a.vocab + (a.max_positions if learned else 0) + a.type_vocab
        self.out.add(
            p,
            "embedding",
            flops=(tables - 1) * t * e,
            weights=tables * t * e,  # only the rows that are looked up are read
            inputs=0,
            outputs=t * e,
            params=rows * e if params else 0,
            masks=t * e * self.r if a.dropout else 0,  # embedding dropout
        )
        if a.embedding_norm:
            self.norm(f"{p}.norm", t, e, 1, False)
        if e != a.hidden:
            self.linear(f"{p}.proj", t, e, a.hidden, 1, False)
        if a.relative_buckets:
            self.out.add(
                f"{p}.relative_bias",
                "embedding",
                flops=0,
                weights=a.relative_buckets * a.heads,
                inputs=0,
                outputs=self.b * a.heads * seq * seq,
                params=a.relative_buckets * a.heads,
            )


def build(arch: TransformerArch, run: RunConfig, model: str) -> LayerTable:
    """Per-layer costs of one forward pass, decode step or training step."""
    a = arch
    if run.phase == "decode" and a.type == "encoder":
        raise FieldError(
            "phase",
            "decode",
            f"{model} is an encoder; decode needs a decoder model (use phase inference)",
        )
    seq = run.seq if run.seq is not None else a.default_seq
    if seq > a.max_positions:
        raise FieldError(
            "seq",
            seq,
            f"{model} takes at most {a.max_positions} tokens (architecture.max_positions)",
        )
    if a.patch_size and seq != a.default_seq:
        raise FieldError(
            "seq",
            seq,
            f"{model} sees a {a.image_size}x{a.image_size} image as "
            f"{a.default_seq} tokens; leave seq out",
        )
    decode = run.phase == "decode"
    context = run.context if run.context is not None else seq
    if decode and context > a.max_positions:
        raise FieldError(
            "context",
            context,
            f"{model} takes at most {a.max_positions} tokens (architecture.max_positions)",
        )
    b = run.batch
    out = LayerTableBuilder()
    stack = _Stack(a, out, b, flash=run.attention == "flash", replicated=run.replicated_over)
    q_len = 1 if decode else seq  # decode: one new token per sample
    # a decode step's new token attends to the `context` cached tokens and to itself
    kv_len = context + 1 if decode else seq

    if a.type == "encoder":
        stack.embeddings("embeddings", seq, params=True)
        stack.blocks("block", a.layers, seq, seq, decode=False, cross_len=0)
        tokens = b * seq
    elif a.type == "decoder":
        stack.embeddings("embeddings", q_len, params=True)
        stack.blocks("block", a.layers, q_len, kv_len, decode=decode, cross_len=0, causal=True)
        tokens = b * q_len
    else:  # encoder-decoder; source and target both `seq` long; decode reuses the encoder
        if not decode:
            stack.embeddings("encoder.embeddings", seq, params=True)
            stack.blocks("encoder.block", a.layers, seq, seq, decode=False, cross_len=0)
        stack.embeddings("decoder.embeddings", q_len, params=not a.tie_embeddings or decode)
        stack.blocks(
            "decoder.block",
            a.decoder_layers,
            q_len,
            kv_len,
            decode=decode,
            cross_len=seq,
            causal=True,
        )
        tokens = b * q_len
    if run.logits == "last" and run.phase in ("inference", "prefill") and a.head == "lm":
        tokens = b  # a serving stack computes the logits of the last position only

    h, bias = a.hidden, 1 if a.bias else 0
    r = run.replicated_over
    if a.head == "pooler":  # dense + tanh on the first token of every sequence
        params = h * h + bias * h
        out.add(
            "pooler",
            "matmul",
            flops=2 * b * h * h + bias * b * h + costs.TANH * b * h,
            weights=params,
            inputs=b * h,
            outputs=b * h,
            params=params,
            saved=b * h,
            gemm=(1, b, h, h),
        )
    elif a.head == "classifier":  # linear on the class token
        params = h * a.classes + bias * a.classes
        out.add(
            "classifier",
            "matmul",
            flops=2 * b * h * a.classes + bias * b * a.classes,
            weights=params,
            inputs=b * h,
            outputs=b * a.classes,
            params=params,
            saved=b * h,
            gemm=(1, b, a.classes, h),
        )
    elif a.head == "lm":  # logits over the vocabulary for every token
        out.add(
            "lm_head",
            "matmul",
            flops=2 * tokens * h * a.vocab,
            weights=h * a.vocab,
            inputs=tokens * h * r,  # column-parallel over the vocabulary: its input whole
            outputs=tokens * a.vocab,
            params=0 if a.tie_embeddings else h * a.vocab,
            saved=tokens * h * r + tokens * a.vocab,  # input, and the logits for the loss
            gemm=(1, tokens, a.vocab, h),
        )

    return out.build(*run.element_bytes)
