"""The LSTM family: stacked (optionally bidirectional, optionally projected) LSTM language
models and encoder-decoders (Seq2Seq), with a word-embedding or a character-CNN input (ELMo).

Per LSTM layer the table has: the input GEMM for all tokens at once (weights read once),
the recurrent GEMM, one row with `count = seq` steps because each step needs the previous
step's state (its weights are read again every step: the reason LSTMs are memory-bound at
small batch), the cell's elementwise update, and the projection (LSTMP) if any.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._schema import Fields
from ..errors import FieldError, shown
from ..layers import LayerTable, LayerTableBuilder
from ..scenario import RunConfig
from . import costs
from .base import Architecture


@dataclass(frozen=True)
class CharCnn:
    chars: int  # character vocabulary
    dim: int  # character embedding size
    max_chars: int  # characters per token
    filters: tuple[tuple[int, int], ...]  # (width, channels)
    highway: int  # highway layers
    projection: int  # output size


@dataclass(frozen=True)
class LstmArch(Architecture):
    family: ClassVar[str] = "lstm"
    layers: int
    hidden: int
    projection: int  # LSTMP output size; 0 = none
    bidirectional: bool
    independent_directions: bool  # ELMo: two one-way stacks; else layers see both directions
    vocab: int  # input word vocabulary (0 with a char CNN)
    embedding_dim: int
    char_cnn: CharCnn | None
    decoder_layers: int  # > 0: an encoder-decoder (Seq2Seq) with this many decoder layers
    decoder_vocab: int
    softmax_vocab: int  # output layer over this vocabulary (0: none)
    max_positions: int

    # The family protocol (base.Architecture), answered explicitly.

    @property
    def takes_seq(self) -> bool:
        return True

    @property
    def default_seq(self) -> int:
        return self.max_positions

    @property
    def max_seq(self) -> int:
        return self.max_positions

    @property
    def blocks(self) -> int:
        """Stacked LSTM layers (encoder and decoder): a pipeline splits them into stages."""
        return self.layers + self.decoder_layers

    def boundary_elements(self, run: RunConfig) -> float:
        """One layer's output sequence: batch x seq x (projection or hidden) per direction."""
        seq = run.seq if run.seq is not None else self.default_seq
        width = (self.projection or self.hidden) * (2 if self.bidirectional else 1)
        return float(run.batch * seq * width)

    @property
    def tensor_split(self) -> None:
        """Not modelled: the gate GEMMs are not split over tensor ranks here."""
        return None

    def kv_cache_elements(self, run: RunConfig) -> float:
        """0: decode steps are not modelled for LSTMs (`build` refuses the phase); the
        recurrent state is not a cache that grows with the context."""
        return 0.0

    def active_params(self, table: LayerTable) -> float:
        """Every parameter: each token goes through every layer."""
        return table.total_params

    def attention_core(self, table: LayerTable) -> np.ndarray:
        """No row: an LSTM has no attention to recompute selectively."""
        return np.zeros(len(table), dtype=bool)

    def build(self, run: RunConfig, model: str) -> LayerTable:
        return build(self, run, model)


def _filters(f: Fields) -> tuple[tuple[int, int], ...] | None:
    pair = {
        "type": "array",
        "items": {"type": "integer", "minimum": 1},
        "minItems": 2,
        "maxItems": 2,
    }
    raw = f.raw("filters", {"type": "array", "items": pair, "minItems": 1}, required=True)
    ok = (
        isinstance(raw, list)
        and raw
        and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, int) and v > 0 for v in p)
            for p in raw
        )
    )
    if not ok:
        f.fail("filters", f"expected a list of [width, channels] pairs, got {shown(raw)}")
        return None
    return tuple((p[0], p[1]) for p in raw)


def parse_architecture(f: Fields) -> LstmArch | None:
    layers = f.integer("layers")
    hidden = f.integer("hidden")
    projection = f.integer("projection", required=False, default=0, minimum=0)
    bidirectional = f.flag("bidirectional", default=False)
    independent = f.flag("independent_directions", default=False)
    vocab = f.integer("vocab", required=False, default=0, minimum=0)
    embedding_dim = f.integer("embedding_dim", required=False, default=0, minimum=0)
    decoder_layers = f.integer("decoder_layers", required=False, default=0, minimum=0)
    decoder_vocab = f.integer("decoder_vocab", required=bool(decoder_layers), default=0)
    softmax_vocab = f.integer("softmax_vocab", required=False, default=0, minimum=0)
    max_positions = f.integer("max_positions")
    char = None
    cf = f.mapping("char_cnn", required=False)
    if cf is not None:
        values = (
            cf.integer("chars"),
            cf.integer("dim"),
            cf.integer("max_chars"),
            _filters(cf),
            cf.integer("highway", minimum=0),
            cf.integer("projection"),
        )
        cf.done()
        if None not in values:
            char = CharCnn(*values)  # type: ignore[arg-type]
    f.done()
    if None in (layers, hidden, max_positions, projection, vocab, embedding_dim, decoder_layers):
        return None
    if (char is None) == (not vocab):
        f.fail("vocab", "give either vocab (+ embedding_dim) or char_cnn")
        return None
    if vocab and not embedding_dim:
        f.fail("embedding_dim", "missing (the size of the word embedding)")
        return None
    return LstmArch(
        layers=layers,  # type: ignore[arg-type]
        hidden=hidden,  # type: ignore[arg-type]
        projection=projection or 0,
        bidirectional=bidirectional,
        independent_directions=independent,
        vocab=vocab or 0,
        embedding_dim=embedding_dim or 0,
        char_cnn=char,
        decoder_layers=decoder_layers or 0,
        decoder_vocab=decoder_vocab or 0,
        softmax_vocab=softmax_vocab or 0,
        max_positions=max_positions,  # type: ignore[arg-type]
    )


def _lstm_stack(
    out: LayerTableBuilder, p: str, a: LstmArch, n_layers: int, d_in: int, b: int, s: int
) -> int:
    """Rows of `n_layers` LSTM layers over b x s tokens; returns the output size."""
    h = a.hidden
    state = a.projection or h  # what is fed back (and up) each step
    dirs = 2 if a.bidirectional else 1
    t = b * s
    first_in = d_in
    later_in = state if a.independent_directions else state * dirs
    groups = [(f"{p}.layer1", 1, first_in)]
    if n_layers > 1:
        groups.append(
            (f"{p}.layer2-{n_layers}" if n_layers > 2 else f"{p}.layer2", n_layers - 1, later_in)
        )
    if first_in == later_in:  # all layers alike: one set of rows
        groups = [(f"{p}.layers", n_layers, first_in)]
    for name, count, d in groups:
        n = count * dirs
        out.linear(f"{name}.input_gemm", t, d, 4 * h, bias=True, count=n)  # + gate biases
        w_rec = 4 * h * state
        out.add(
            f"{name}.recurrent_gemm",
            "matmul",
            flops=2 * b * state * 4 * h + b * 4 * h,
            weights=w_rec,
            inputs=b * state + b * 4 * h,
            outputs=b * 4 * h,
            params=w_rec * n,  # the same weights at every step
            count=n * s,
            shared=True,
            saved=b * state,  # the previous state, for the recurrent weight gradient
            gemm=(1, b, 4 * h, state),
        )
        out.add(
            f"{name}.cell",
            "activation",
            flops=costs.LSTM_CELL * t * h,
            inputs=t * 4 * h + t * h,
            outputs=2 * t * h,
            count=n,
            saved=t * 4 * h + t * h,  # gate activations and the cell state
            transcendentals=costs.LSTM_CELL_TRANSCENDENTALS * t * h,
        )
        if a.projection:
            out.linear(f"{name}.projection", t, h, a.projection, bias=False, count=n)
    return later_in


def _char_cnn(out: LayerTableBuilder, c: CharCnn, t: int) -> int:
    """Character embedding, 1-D convolutions with max-pooling over characters, highway layers
    and a projection, for t tokens; returns the output size."""
    out.add(
        "char.embedding",
        "embedding",
        flops=0,
        weights=t * c.max_chars * c.dim,
        inputs=0,
        outputs=t * c.max_chars * c.dim,
        params=c.chars * c.dim,
    )
    width = 0
    for w, n in c.filters:
        steps = c.max_chars - w + 1
        params = w * c.dim * n + n
        out.add(
            f"char.conv{w}",
            "conv",
            flops=2 * t * steps * w * c.dim * n + t * steps * n,
            weights=params,
            inputs=t * c.max_chars * c.dim,
            outputs=t * steps * n,
            params=params,
            saved=t * c.max_chars * c.dim,
            gemm=(1, t * steps, n, w * c.dim),
        )
        out.add(
            f"char.conv{w}.pool", "pool", flops=t * steps * n, inputs=t * steps * n, outputs=t * n
        )
        width += n
    if c.highway:
        out.linear("char.highway", t, width, 2 * width, bias=True, count=c.highway)  # H and T
        out.add(
            "char.highway.gate",
            "activation",
            flops=costs.HIGHWAY_GATE * t * width,
            inputs=3 * t * width,
            outputs=t * width,
            count=c.highway,
            saved=2 * t * width,  # the gate and transform outputs (the input is kept above)
            transcendentals=costs.HIGHWAY_GATE_TRANSCENDENTALS * t * width,
        )
    out.linear("char.projection", t, width, c.projection, bias=True)
    return c.projection


def build(arch: LstmArch, run: RunConfig, model: str) -> LayerTable:
    a = arch
    if run.phase in ("prefill", "decode"):
        raise FieldError("phase", run.phase, "not modelled for LSTMs; use inference or training")
    s = run.seq if run.seq is not None else a.default_seq
    if s > a.max_positions:
        raise FieldError(
            "seq",
            s,
            f"{model} is modelled up to {a.max_positions} tokens (architecture.max_positions)",
        )
    b, t = run.batch, run.batch * s
    out = LayerTableBuilder()
    if a.char_cnn is not None:
        d = _char_cnn(out, a.char_cnn, t)
    else:
        e = a.embedding_dim
        out.add(
            "embedding",
            "embedding",
            flops=0,
            weights=t * e,
            inputs=0,
            outputs=t * e,
            params=a.vocab * e,
        )
        d = e
    enc = "encoder" if a.decoder_layers else "lstm"
    d_out = _lstm_stack(out, enc, a, a.layers, d, b, s)
    if a.decoder_layers:  # Seq2Seq: the target side, `seq` tokens as well
        e = a.embedding_dim
        out.add(
            "decoder.embedding",
            "embedding",
            flops=0,
            weights=t * e,
            inputs=0,
            outputs=t * e,
            params=a.decoder_vocab * e,
        )
        d_out = _lstm_stack(out, "decoder", a, a.decoder_layers, e, b, s)
    if a.softmax_vocab:
        out.linear("softmax.logits", t, d_out, a.softmax_vocab, bias=True)
        out.add(
            "softmax",
            "softmax",
            flops=costs.SOFTMAX * t * a.softmax_vocab,
            inputs=t * a.softmax_vocab,
            outputs=t * a.softmax_vocab,
            saved=t * a.softmax_vocab,  # the probabilities, for the loss gradient
            transcendentals=costs.SOFTMAX_TRANSCENDENTALS * t * a.softmax_vocab,
        )
    return out.build(*run.element_bytes)
