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

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from .._schema import Fields
from ..errors import FieldError
from ..layers import FUSED_ATTENTION, LayerTable, LayerTableBuilder, lora_rows
from ..scenario import RunConfig
from . import costs
from .base import Architecture, TensorSplit

TYPES = ("encoder", "decoder", "encoder-decoder")
POSITIONS = ("learned", "sinusoidal", "rotary", "alibi", "relative")  # alibi, rotary: no table
HEADS = ("none", "pooler", "lm", "classifier")
MLA_ABSORB = ("decode", "always", "never")


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
    # --- attention variants and the newer decoders (issue 29); defaults: the plain model
    qkv_bias: bool = False  # biases on the Q, K and V projections (Qwen2: only there)
    qk_norm: bool = False  # an RMS norm over each head's query and key (Qwen3)
    post_norms: bool = False  # a norm after attention and after the FFN too (Gemma 2)
    attn_softcap: bool = False  # c tanh(s / c) on the attention scores (Gemma 2)
    logit_softcap: bool = False  # c tanh(z / c) on the output logits (Gemma 2)
    # sliding-window attention: a query sees at most the last `sliding_window` keys, and
    # the layer caches at most that many; 0: none. `global_every`: every n-th layer attends
    # to everything (Gemma 2: 2); 0: every layer is local (Mistral 7B)
    sliding_window: int = 0
    global_every: int = 0
    # multi-head latent attention (DeepSeek-V2/V3): kv_lora_rank > 0 turns it on. Queries
    # through a q_lora_rank bottleneck (0: one projection); keys and values from a latent of
    # kv_lora_rank plus a shared rotary key of qk_rope_head_dim, which is all that is
    # cached; per head a nope part of head_dim and a value of v_head_dim
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    mla_absorb: str = "decode"  # W_UK, W_UV absorbed: in decode steps | always | never
    # fine-grained mixture of experts (DeepSeekMoE): the experts' width, always-used shared
    # experts, dense FFN in the first `dense_layers`, a bias on the router's scores, and
    # multi-token-prediction modules trained beside the model
    moe_ffn: int = 0  # 0: ffn
    shared_experts: int = 0
    dense_layers: int = 0
    router_bias: bool = False
    mtp_layers: int = 0

    @property
    def mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def expert_ffn(self) -> int:
        return self.moe_ffn or self.ffn

    def attention_layers(self, n: int) -> tuple[int, int]:
        """(global, local) layers of `n` self-attention layers: every layer global without
        a sliding window; with one, every `global_every`-th global (0: none)."""
        if not self.sliding_window:
            return n, 0
        n_global = n // self.global_every if self.global_every else 0
        return n_global, n - n_global

    @property
    def kv_token_elements(self) -> int:
        """Values one layer caches a token: K and V of every KV head, or MLA's latent and
        shared rotary key (kv_lora_rank + qk_rope_head_dim)."""
        if self.mla:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.kv_dim

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
        kv = (("kv_heads", self.kv_heads),) if self.kv_heads > 1 and not self.mla else ()
        moe = (("moe_ffn", self.moe_ffn),) if self.experts and self.moe_ffn else ()
        dims = (("heads", self.heads), *kv, ("ffn", self.ffn), *moe)
        return TensorSplit(dims, allreduces_per_block=2)

    def _seq(self, run: RunConfig) -> int:
        return run.seq if run.seq is not None else self.default_seq

    def kv_cache_elements(self, run: RunConfig) -> float:
        """K and V of every decoder layer per sample: `seq` tokens after a prefill; in a
        decode step the `context` cached tokens and the new one's; for encoder-decoders
        also the cross-attention K and V over the `seq` source tokens. A sliding-window
        layer keeps at most its window's tokens; an MLA layer keeps the latent and the
        shared rotary key (kv_lora_rank + qk_rope_head_dim a token), not K and V."""
        if self.type == "encoder":
            return 0.0
        seq = self._seq(run)
        tokens = (run.context if run.context is not None else seq) + (
            1 if run.phase == "decode" else 0
        )
        layers = self.layers if self.type == "decoder" else self.decoder_layers
        layers += self.mtp_layers  # each MTP module's block keeps its own cache
        cross = seq if self.type == "encoder-decoder" else 0
        n_global, n_local = self.attention_layers(layers)
        cached = n_global * tokens + n_local * min(tokens, self.sliding_window)
        per_token = self.kv_token_elements
        return float(run.batch * per_token * (cached + layers * cross))

    def boundary_elements(self, run: RunConfig) -> float:
        """The hidden state of every token in flight: batch x (1 in decode, else seq) x hidden."""
        tokens = 1 if run.phase == "decode" else self._seq(run)
        return float(run.batch * tokens * self.hidden)

    def active_params(self, table: LayerTable) -> float:
        """All parameters but the share of expert weights a token is not routed to (and
        the multi-token-prediction modules, which predict further tokens, not this one)."""
        names = table.name.astype(str)
        mtp = float(np.sum(table.params[np.char.startswith(names, "mtp.")]))
        if not self.experts:
            return table.total_params - mtp
        expert = (np.char.find(names, ".expert_") >= 0) & ~np.char.startswith(names, "mtp.")
        idle = (self.experts - self.top_k) / self.experts
        return float(table.total_params - mtp - idle * np.sum(table.params[expert]))

    def attention_core(self, table: LayerTable) -> np.ndarray:
        """The rows between the QKV projection and the output projection: scores, softmax
        and context (or the fused flash kernel) of self- and cross-attention."""
        core = ("scores", "softmax", "context", "flash")
        return np.array(
            [
                n.rsplit(".", 2)[-2:][0] in ("attn", "attn_local", "cross")
                and n.rsplit(".", 1)[-1] in core
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
    qkv_bias = f.flag("qkv_bias", default=bool(bias))
    qk_norm = f.flag("qk_norm", default=False)
    post_norms = f.flag("post_norms", default=False)
    attn_softcap = f.flag("attn_softcap", default=False)
    logit_softcap = f.flag("logit_softcap", default=False)
    window = f.integer("sliding_window", required=False, default=0, minimum=0) or 0
    global_every = f.integer("global_every", required=False, default=0, minimum=0) or 0
    q_lora = f.integer("q_lora_rank", required=False, default=0, minimum=0) or 0
    kv_lora = f.integer("kv_lora_rank", required=False, default=0, minimum=0) or 0
    rope_dim = f.integer("qk_rope_head_dim", required=bool(kv_lora), default=0, minimum=0) or 0
    v_head_dim = f.integer("v_head_dim", required=False, default=0, minimum=0) or 0
    mla_absorb = f.choice("mla_absorb", MLA_ABSORB, required=False, default="decode")
    moe_ffn = f.integer("moe_ffn", required=False, default=0, minimum=0) or 0
    shared_experts = f.integer("shared_experts", required=False, default=0, minimum=0) or 0
    dense_layers = f.integer("dense_layers", required=False, default=0, minimum=0) or 0
    router_bias = f.flag("router_bias", default=False)
    mtp_layers = f.integer("mtp_layers", required=False, default=0, minimum=0) or 0
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
    if (window or global_every) and arch_type != "decoder":
        f.fail("sliding_window", "sliding-window attention is modelled for decoders only")
        ok = False
    if global_every and not window:
        f.fail("global_every", "needs sliding_window (the local layers' window)")
        ok = False
    if kv_lora and arch_type != "decoder":
        f.fail("kv_lora_rank", "latent attention (MLA) is modelled for decoders only")
        ok = False
    if (q_lora or v_head_dim) and not kv_lora:
        f.fail("kv_lora_rank", "q_lora_rank and v_head_dim describe latent attention: give it")
        ok = False
    if (moe_ffn or shared_experts or router_bias) and not experts:
        f.fail("experts", "moe_ffn, shared_experts and router_bias need experts")
        ok = False
    if dense_layers and (not experts or dense_layers >= layers):
        f.fail(
            "dense_layers", f"needs experts and fewer than layers ({layers}), got {dense_layers}"
        )
        ok = False
    if mtp_layers and arch_type != "decoder":
        f.fail("mtp_layers", "multi-token prediction modules need a decoder")
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
        qkv_bias=qkv_bias,
        qk_norm=qk_norm,
        post_norms=post_norms,
        attn_softcap=attn_softcap,
        logit_softcap=logit_softcap,
        sliding_window=window,
        global_every=global_every,
        q_lora_rank=q_lora,
        kv_lora_rank=kv_lora,
        qk_rope_head_dim=rope_dim,
        v_head_dim=(v_head_dim or head_dim) if kv_lora else 0,
        mla_absorb=mla_absorb,
        moe_ffn=moe_ffn,
        shared_experts=shared_experts,
        dense_layers=dense_layers,
        router_bias=router_bias,
        mtp_layers=mtp_layers,
    )


@dataclass(frozen=True)
class _Geometry:
    """The shape of an attention core: `heads` query heads, each scoring over `qk` values
    and gathering `v` wide values; K and V elements a key token (all heads), or with
    `shared_kv` one tensor of `k_width` whose first `v_width` values are V (MLA absorbed)."""

    heads: int
    qk: int
    v: int
    k_width: int
    v_width: int
    shared_kv: bool = False

    @property
    def kv_read(self) -> int:
        """K and V elements a key token that a fused kernel reads."""
        return self.k_width if self.shared_kv else self.k_width + self.v_width

    @property
    def v_read(self) -> int:
        """V elements a key token that the context GEMM reads."""
        return self.v_width

    @property
    def kv_heads(self) -> int:
        """Key heads: K's width over a head's (1 for MLA's one latent KV, absorbed)."""
        return max(1, min(self.heads, round(self.k_width / self.qk)))

    @property
    def group(self) -> int:
        """Query heads that read one key/value head (grouped-query attention)."""
        return max(1, self.heads // self.kv_heads)


def causal_pairs(tokens: int, window: int = 0) -> float:
    """Query-key pairs of causal self-attention over `tokens` tokens: s (s + 1) / 2; with a
    sliding window of W keys a query, sum_i min(i, W) = W (W + 1) / 2 + (s - W) W."""
    if not window or tokens <= window:
        return tokens * (tokens + 1) / 2
    return window * (window + 1) / 2 + (tokens - window) * window


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
        lora: tuple[int, frozenset[str]] = (0, frozenset()),
    ) -> None:
        self.a = arch
        self.out = out
        self.b = batch
        self.flash = flash  # one fused attention kernel (FlashAttention)
        self.bias = 1 if arch.bias else 0
        # LoRA (RunConfig.lora_rank, lora_targets): the adapters' rank and the projections
        # they sit on (rank 0: none)
        self.lora_rank, self.lora_targets = lora
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
        bias: bool | None = None,
        lora: tuple[tuple[str, int], ...] = (),
    ) -> None:
        """y = x W (+ b) with the model's bias setting (or `bias`). `column`: a
        column-parallel projection (its input, read and kept, is whole on every tensor rank
        without sequence parallelism); `masks` after a row-parallel one are whole too.
        `lora`: the LoRA targets W's output columns are made of, (target, width) each
        (a fused QKV projection: q, k, v), which get adapters in a LoRA fine-tune."""
        whole = self.r if column else 1  # a column-parallel GEMM reads its input whole
        self.out.linear(
            name,
            tokens,
            d_in,
            d_out,
            bias=bool(self.bias) if bias is None else bias,
            count=count,
            shared=shared,
            masks=masks * self.r,
            saved=tokens * d_in * whole,
            inputs=tokens * d_in * whole,
        )
        self.adapters(name, tokens, d_in, lora, count, shared, whole)

    def adapters(
        self,
        name: str,
        tokens: float,
        d_in: int,
        parts: tuple[tuple[str, int], ...],
        count: int,
        shared: bool,
        whole: int = 1,
        experts: tuple[int, float] = (1, 1.0),
    ) -> None:
        """LoRA adapters (Hu et al. 2021, arXiv:2106.09685, eq. 3: h = W0 x + B A x) beside
        a frozen projection, one on each of its parts (target, d_out) the run targets, rows
        after the projection's: `.a`, x A (d_in -> r: 2 r d_in FLOPs a token; x is the
        projection's own input, already kept for the backward, so nothing new is kept);
        `.b`, (x A) B (r -> d_out: 2 r d_out FLOPs a token; keeps x A, r a token); `.add`,
        the output scaled by alpha / r and added to the projection's (2 FLOPs an output
        element: PEFT's `result + lora_B(lora_A(dropout(x))) * scaling`, lora_dropout 0).
        Parameters r (d_in + d_out) an adapter, no bias (PEFT's bias="none").
        `experts`: (experts, experts touched) of a routed expert projection, one adapter
        each (their weights read only where touched, as the experts' own)."""
        r = self.lora_rank
        e, touched = experts
        for target, d_out in parts:
            if not r or target not in self.lora_targets:
                continue
            q = f"{name}.lora_{target}"
            self.out.add(
                f"{q}.a",
                "matmul",
                flops=2 * tokens * d_in * r,
                weights=touched * d_in * r,
                inputs=tokens * d_in * whole,
                outputs=tokens * r,
                params=e * d_in * r,
                count=count,
                shared=shared,
                gemm=(touched, tokens / touched, r, d_in),
            )
            self.out.add(
                f"{q}.b",
                "matmul",
                flops=2 * tokens * r * d_out,
                weights=touched * r * d_out,
                inputs=tokens * r,
                outputs=tokens * d_out,
                params=e * r * d_out,
                count=count,
                shared=shared,
                saved=tokens * r,
                gemm=(touched, tokens / touched, d_out, r),
            )
            self.out.add(
                f"{q}.add",
                "elementwise",
                flops=costs.LORA_SCALE_ADD * tokens * d_out,
                inputs=2 * tokens * d_out,
                outputs=tokens * d_out,
                count=count,
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
        cache's storage format. Self-attention with a sliding window splits the core into
        the global layers' rows (`attn`) and the local layers' (`attn_local`); latent
        attention (MLA) is `_mla`.
        """
        a, b, shared = self.a, self.b, self.a.shared_layers
        t = b * q_len
        if not cross and a.mla:
            self._mla(p, q_len, kv_len, count, causal=causal, decode=from_cache)
            return
        qkv_bias = a.qkv_bias
        if cross:
            q = (("q", a.q_dim),)
            self.linear(f"{p}.q_proj", t, a.hidden, a.q_dim, count, shared, column=True, lora=q)
            if project_kv:
                dims = (a.hidden, 2 * a.kv_dim)
                kv = (("k", a.kv_dim), ("v", a.kv_dim))
                self.linear(f"{p}.kv_proj", b * kv_len, *dims, count, shared, column=True, lora=kv)
        else:
            dims = (a.hidden, a.q_dim + 2 * a.kv_dim)
            qkv = (("q", a.q_dim), ("k", a.kv_dim), ("v", a.kv_dim))
            self.linear(
                f"{p}.qkv_proj", t, *dims, count, shared, column=True, bias=qkv_bias, lora=qkv
            )
            if a.qk_norm:  # an RMS norm over each head's query and key (Qwen3)
                width = a.q_dim + a.kv_dim
                self.out.add(
                    f"{p}.qk_norm",
                    "norm",
                    flops=costs.NORMS[a.norm] * t * width,
                    weights=2 * a.head_dim,
                    inputs=t * width,
                    outputs=t * width,
                    params=2 * a.head_dim * costs.NORM_PARAMS_PER_CHANNEL[a.norm],
                    count=count,
                    shared=shared,
                    saved=t * width,
                )
        g = _Geometry(a.heads, a.head_dim, a.head_dim, a.kv_dim, a.kv_dim)
        cached = 1.0 if from_cache else 0.0
        self._cores(p, q_len, kv_len, count, g, causal=causal and not cross, cached=cached)
        drop = 1 if a.dropout else 0
        o = (("o", a.hidden),)
        masks = drop * t * a.hidden
        self.linear(f"{p}.out_proj", t, a.q_dim, a.hidden, count, shared, masks=masks, lora=o)

    def _cores(
        self,
        p: str,
        q_len: int,
        kv_len: int,
        count: int,
        g: _Geometry,
        *,
        causal: bool,
        cached: float,
    ) -> None:
        """The attention core of `count` layers: of the global ones under `p`, of the local
        (sliding-window) ones under `p`_local. A local layer's query sees at most the last
        W keys: in a decode step it reads min(kv_len, W) cached tokens; in a causal pass
        over q_len = kv_len = s tokens a fused kernel visits sum_i min(i, W) query-key pairs
        (an eager one computes the whole masked matrix, as for causal attention)."""
        a = self.a
        n_global, n_local = a.attention_layers(count) if causal else (count, 0)
        for name, n, window in ((p, n_global, 0), (f"{p}_local", n_local, a.sliding_window)):
            if not n:
                continue
            keys = min(kv_len, window) if window and q_len < kv_len else kv_len
            if self.flash:
                pairs = float(q_len * keys)
                if causal and q_len == keys:
                    pairs = causal_pairs(q_len, window)
                self._flash(name, q_len, keys, n, g, pairs=pairs, cached=cached)
            else:
                self._eager(name, q_len, keys, n, g, cached=cached)

    def _flash(
        self,
        p: str,
        q_len: int,
        kv_len: int,
        count: int,
        g: _Geometry,
        *,
        pairs: float,
        cached: float,
    ) -> None:
        """FlashAttention (Dao et al. 2022): scores, softmax and context in one kernel over
        tiles in on-chip memory; DRAM sees Q, K, V in and the context out, never the
        q_len x kv_len matrix. Under a causal mask (or a sliding window) the blocks outside
        it are skipped: `pairs` of the q_len x kv_len query-key pairs a sample and head are
        visited. Backward keeps Q,
        K, V and the softmax statistics (one fp32 value a query and head) and recomputes
        the scores; the output is kept by the projection after it. Dropout masks are
        regenerated, not kept. As two chained GEMMs a key/value head at a time: the query
        heads that share one (grouped-query attention; MLA's one latent KV) are rows of one
        tile with their queries, as FlashAttention-3 (pack_gqa), FlashInfer and vLLM's
        paged-attention kernels run them, so a decode step's one query a head does not pad
        a tile alone."""
        a, b = self.a, self.b
        t = b * q_len
        scores = b * g.heads * pairs  # the visited scores
        share = pairs / (q_len * kv_len)
        kv = b * kv_len * g.kv_read
        cap = costs.SOFTCAP * scores if a.attn_softcap else 0.0
        cap_t = costs.SOFTCAP_TRANSCENDENTALS * scores if a.attn_softcap else 0.0
        self.out.add(
            f"{p}{FUSED_ATTENTION}",
            "attention",
            flops=2 * scores * (g.qk + g.v) + costs.SOFTMAX * scores + cap,
            inputs=t * g.heads * g.qk + kv,
            outputs=t * g.heads * g.v,
            count=count,
            saved=t * g.heads * g.qk + kv,  # Q, K, V
            masks=4 * b * g.heads * q_len,  # the fp32 log-sum-exp of each query and head
            # two chained GEMMs: Q K^T (k = qk) and P V (n = v), as one of width (qk + v) / 2
            gemm=(b * g.kv_heads, g.group * q_len, (g.qk + g.v) / 2, share * 2 * kv_len),
            transcendentals=costs.SOFTMAX_TRANSCENDENTALS * scores + cap_t,
            cached=cached * kv,
        )

    def _eager(
        self, p: str, q_len: int, kv_len: int, count: int, g: _Geometry, *, cached: float
    ) -> None:
        """Scores, softmax and context as three kernels; the causal mask is applied, not
        skipped, so the full q_len x kv_len matrix is computed and kept."""
        a, b = self.a, self.b
        t = b * q_len
        scores = b * g.heads * q_len * kv_len
        keys, values = b * kv_len * g.k_width, b * kv_len * g.v_read
        self.out.add(
            f"{p}.scores",  # Q K^T per head; K read from the projection output or the cache
            "attention",
            flops=2 * scores * g.qk,
            inputs=t * g.heads * g.qk + keys,
            outputs=scores,
            count=count,
            saved=t * g.heads * g.qk + keys,  # Q and K
            gemm=(b * g.heads, q_len, kv_len, g.qk),
            cached=cached * keys,
        )
        drop = 1 if a.dropout else 0  # attention dropout keeps its mask and its output
        cap = costs.SOFTCAP * scores if a.attn_softcap else 0.0
        cap_t = costs.SOFTCAP_TRANSCENDENTALS * scores if a.attn_softcap else 0.0
        self.out.add(
            f"{p}.softmax",  # with Gemma 2's soft-capping of the scores before it
            "softmax",
            flops=costs.SOFTMAX * scores + cap,
            inputs=scores,
            outputs=scores,
            count=count,
            saved=(1 + drop) * scores,
            transcendentals=costs.SOFTMAX_TRANSCENDENTALS * scores + cap_t,
            masks=drop * scores,
        )
        self.out.add(
            f"{p}.context",  # P V per head
            "attention",
            flops=2 * scores * g.v,
            inputs=scores + values,
            outputs=t * g.heads * g.v,
            count=count,
            saved=values,  # V (P is the softmax's, counted there)
            gemm=(b * g.heads, q_len, g.v, kv_len),
            cached=cached * values,
        )

    def _mla(
        self, p: str, q_len: int, kv_len: int, count: int, *, causal: bool, decode: bool
    ) -> None:
        """Multi-head latent attention (DeepSeek-V2, arXiv:2405.04434, section 2.1; V3).
        Queries: x W_DQ (hidden -> q_lora_rank), an RMS norm, W_UQ (-> heads x (nope +
        rope)). Keys and values: x W_DKV (hidden -> kv_lora_rank + rope), the cached
        latent c and shared rotary key, an RMS norm of c. Not absorbed (training, prefill):
        W_UKV up-projects c of every key token to K_nope and V (heads x (nope + v)), and
        attention runs per head on nope + rope = qk wide scores and v wide values.
        Absorbed (decode): W_UK is folded into the query (q_nope W_UK: per head nope ->
        kv_lora_rank) and W_UV applied after (per head kv_lora_rank -> v), so attention
        runs on the cached latent itself: one shared K of kv_lora_rank + rope read once,
        its first kv_lora_rank values serving as V (MQA-like)."""
        a, b, shared = self.a, self.b, self.a.shared_layers
        t, h, hid = b * q_len, a.heads, a.hidden
        nope, rope, lora, v = a.head_dim, a.qk_rope_head_dim, a.kv_lora_rank, a.v_head_dim
        qk = nope + rope
        if a.q_lora_rank:
            r = a.q_lora_rank
            q_down, q_up = (("q", r),), (("q", h * qk),)
            self.linear(
                f"{p}.q_down", t, hid, r, count, shared, column=True, bias=False, lora=q_down
            )
            self.norm(f"{p}.q_norm", t, r, count, shared)
            self.linear(f"{p}.q_up", t, r, h * qk, count, shared, bias=False, lora=q_up)
        else:
            q = (("q", h * qk),)
            self.linear(
                f"{p}.q_proj", t, hid, h * qk, count, shared, column=True, bias=False, lora=q
            )
        # LoRA: the latent projections make keys and values both (PEFT's DeepSeek targets
        # kv_a_proj_with_mqa and kv_b_proj): k adapts W_DKV, v W_UKV
        down = (("k", lora + rope),)
        self.linear(
            f"{p}.kv_down", t, hid, lora + rope, count, shared, column=True, bias=False, lora=down
        )
        self.norm(f"{p}.kv_norm", t, lora, count, shared)
        absorbed = a.mla_absorb == "always" or (a.mla_absorb == "decode" and decode)
        cached = 1.0 if decode else 0.0
        if absorbed:
            self.out.add(
                f"{p}.q_absorb",  # q_nope W_UK per head: nope -> kv_lora_rank
                "matmul",
                flops=2 * t * h * nope * lora,
                weights=h * nope * lora,
                inputs=t * h * nope,
                outputs=t * h * lora,
                params=h * nope * lora,
                count=count,
                shared=shared,
                saved=t * h * nope,
                gemm=(h, t, lora, nope),
            )
            g = _Geometry(h, lora + rope, lora, lora + rope, lora, shared_kv=True)
            self._cores(p, q_len, kv_len, count, g, causal=causal, cached=cached)
            self.out.add(
                f"{p}.v_up",  # the latent context through W_UV per head: kv_lora_rank -> v
                "matmul",
                flops=2 * t * h * lora * v,
                weights=h * lora * v,
                inputs=t * h * lora,
                outputs=t * h * v,
                params=h * lora * v,
                count=count,
                shared=shared,
                saved=t * h * lora,
                gemm=(h, t, v, lora),
            )
        else:
            keys = b * kv_len  # every key token's latent, read from the cache in decode
            up = lora * h * (nope + v)
            self.out.add(
                f"{p}.kv_up",
                "matmul",
                flops=2 * keys * up,
                weights=up,
                inputs=keys * lora,
                outputs=keys * h * (nope + v),
                params=up,
                count=count,
                shared=shared,
                saved=keys * lora,
                gemm=(1, keys, h * (nope + v), lora),
                cached=cached * keys * lora,
            )
            self.adapters(f"{p}.kv_up", keys, lora, (("v", h * (nope + v)),), count, shared)
            g = _Geometry(h, qk, v, h * qk, h * v)
            self._cores(p, q_len, kv_len, count, g, causal=causal, cached=0.0)
        drop = 1 if a.dropout else 0
        o = (("o", hid),)
        self.linear(f"{p}.out_proj", t, h * v, hid, count, shared, masks=drop * t * hid, lora=o)

    def ffn(self, p: str, tokens: int, count: int, width: int = 0, name: str = "ffn") -> None:
        """A dense feed-forward block of `width` (default: the model's ffn); `name`
        prefixes its rows (DeepSeekMoE's shared experts run as one such block)."""
        a, shared = self.a, self.a.shared_layers
        f = width or a.ffn
        up = 2 * f if a.ffn_gated else f
        act = costs.ACTIVATIONS[a.activation] + (1 if a.ffn_gated else 0)  # gate: a multiply
        parts = (("gate", f), ("up", f)) if a.ffn_gated else (("up", f),)
        self.linear(f"{p}.{name}_up", tokens, a.hidden, up, count, shared, column=True, lora=parts)
        self.out.add(
            f"{p}.{name}_act",
            "activation",
            flops=act * tokens * f,
            inputs=tokens * up,
            outputs=tokens * f,
            count=count,
            saved=tokens * up,
            transcendentals=costs.TRANSCENDENTALS[a.activation] * tokens * f,
            fuse_aux=self._aux(tokens * up),  # in ffn_up's epilogue (bias-GELU, SwiGLU)
        )
        masks = tokens * a.hidden if a.dropout else 0
        down = (("down", a.hidden),)
        self.linear(f"{p}.{name}_down", tokens, f, a.hidden, count, shared, masks=masks, lora=down)

    def moe(self, p: str, tokens: int, count: int) -> None:
        """Router, then each token through `top_k` of `experts` FFNs (of width moe_ffn),
        then the weighted sum; with shared experts (DeepSeekMoE) every token also through
        one FFN of shared_experts x moe_ffn, added to the routed experts' sum."""
        a, shared, h = self.a, self.a.shared_layers, self.a.hidden
        k, e, f = a.top_k, a.experts, a.expert_ffn
        up = 2 * f if a.ffn_gated else f
        act = costs.ACTIVATIONS[a.activation] + (1 if a.ffn_gated else 0)
        touched = expected_experts_touched(e, k, tokens)
        routed = tokens * k  # token-expert pairs
        gate = h * e + (e if a.router_bias else 0)  # DeepSeek-V3: a bias on the scores
        self.out.add(
            f"{p}.router",
            "matmul",
            flops=2 * tokens * h * e + (tokens * e if a.router_bias else 0),
            weights=gate,
            inputs=tokens * h * self.r,  # the norm's output, whole on every rank without SP
            outputs=tokens * e,
            params=gate,
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
        parts = (("gate", f), ("up", f)) if a.ffn_gated else (("up", f),)
        self.adapters(f"{p}.expert_up", routed, h, parts, count, shared, self.r, (e, touched))
        self.out.add(
            f"{p}.expert_act",
            "activation",
            flops=act * routed * f,
            inputs=routed * up,
            outputs=routed * f,
            count=count,
            saved=routed * up,
            transcendentals=costs.TRANSCENDENTALS[a.activation] * routed * f,
            fuse_aux=self._aux(routed * up),  # in expert_up's epilogue
        )
        down_params = f * h + self.bias * h
        self.out.add(
            f"{p}.expert_down",
            "matmul",
            flops=2 * routed * f * h + self.bias * routed * h,
            weights=touched * down_params,
            inputs=routed * f,
            outputs=routed * h,
            params=e * down_params,
            count=count,
            shared=shared,
            saved=routed * f,
            gemm=(touched, routed / touched, h, f),
        )
        down = (("down", h),)
        self.adapters(f"{p}.expert_down", routed, f, down, count, shared, 1, (e, touched))
        self.out.add(
            f"{p}.expert_combine",
            "elementwise",
            flops=2 * routed * h,
            inputs=routed * h,
            outputs=tokens * h,
            count=count,
            saved=routed * h,  # expert outputs, for the gate gradients
        )
        if a.shared_experts:
            self.ffn(p, tokens, count, width=a.shared_experts * f, name="shared")
            self.out.add(
                f"{p}.shared_add",
                "elementwise",
                flops=costs.ADD * tokens * h,
                inputs=2 * tokens * h,
                outputs=tokens * h,
                count=count,
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
        dense: int | None = None,
    ) -> None:
        """`n` blocks: self-attention (+ cross-attention over `cross_len` encoder tokens when
        > 0) + FFN, with norms and residual adds; MoE layers every `moe_every`-th block
        after the first `dense` (default: the model's dense_layers), which are dense. With
        post_norms (Gemma 2) the attention's and the FFN's outputs are normed again before
        their residual adds."""
        a, t, shared = self.a, self.b * q_len, self.a.shared_layers
        pre = a.norm_position == "pre"
        first = a.dense_layers if dense is None else dense
        n_moe = (n - first) // a.moe_every if a.experts else 0
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
        if a.post_norms:
            self.norm(f"{p}.attn_post_norm", t, a.hidden, n, shared)
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
            if a.post_norms:
                self.norm(f"{p}.{kind}_post_norm", t, a.hidden, count, shared)
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
    lora = (run.lora_rank or 0, run.lora)
    flash = run.attention == "flash"
    stack = _Stack(a, out, b, flash=flash, replicated=run.replicated_over, lora=lora)
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
        if a.logit_softcap:  # Gemma 2: c tanh(z / c) on every logit
            logits = tokens * a.vocab
            out.add(
                "lm_softcap",
                "activation",
                flops=costs.SOFTCAP * logits,
                inputs=logits,
                outputs=logits,
                transcendentals=costs.SOFTCAP_TRANSCENDENTALS * logits,
            )
    if a.mtp_layers:
        _mtp(stack, out, a, q_len, kv_len, decode=decode, logits=tokens)
    table = out.build(*run.element_bytes)
    nb, wb, _ = run.element_bytes
    if run.lora_rank is not None and wb != nb:  # QLoRA: the adapters stay in the run's dtype
        adapter = lora_rows(table.name)
        table = replace(table, weight_bytes=np.where(adapter, nb / wb, 1.0) * table.weight_bytes)
    return table


def _mtp(
    stack: _Stack,
    out: LayerTableBuilder,
    a: TransformerArch,
    q_len: int,
    kv_len: int,
    *,
    decode: bool,
    logits: int,
) -> None:
    """DeepSeek-V3's multi-token prediction modules (arXiv:2412.19437, section 2.2), run
    beside the model on the same tokens: in training for the MTP loss, in serving to draft
    the next token (section 5.4.3; the speed-up of accepted drafts is not modelled here, the
    cost is). Each of the `mtp_layers` modules norms the previous depth's hidden state and
    the next token's embedding (RMSNorm each), projects their concatenation 2h -> h, runs
    one MoE block (with its own KV cache) and the shared output head (the embedding and
    head are the main model's: no parameters of their own)."""
    d, h, t = a.mtp_layers, a.hidden, stack.b * q_len
    stack.norm("mtp.hidden_norm", t, h, d, False)
    stack.norm("mtp.embed_norm", t, h, d, False)
    stack.linear("mtp.proj", t, 2 * h, h, d, False, column=True, bias=False)
    stack.blocks("mtp.block", d, q_len, kv_len, decode=decode, cross_len=0, causal=True, dense=0)
    out.add(
        "mtp.lm_head",
        "matmul",
        flops=2 * logits * h * a.vocab,
        weights=h * a.vocab,
        inputs=logits * h * stack.r,
        outputs=logits * a.vocab,
        count=d,
        saved=logits * h * stack.r + logits * a.vocab,
        gemm=(1, logits, a.vocab, h),
    )
