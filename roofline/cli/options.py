"""Every option of a run, declared once: its flag, help, type, default, the RunConfig field
it sets, the phases where it has an effect and whether a what-if sweeps it. The scenario
commands (run, memory, whatif, serve, plot, report, check, memwall -m) are built from these
declarations (`scenario_command`), so a flag means the same thing in every command, is
checked the same way, and can come from a run file (`--run FILE`) as well as the command
line. Values given on the command line override the file's; a flag given where it has no
effect (`--recompute` at inference) is refused, not ignored.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from ..scenario import PHASES
from .paths import output_option

TRAINING = ("training",)
FORWARD = ("inference", "prefill")
INFERENCE = ("inference", "prefill", "decode")


@dataclass(frozen=True)
class Opt:
    """One option: `name` is the command function's parameter (and the run file's key)."""

    name: str
    flag: str
    help: str
    kind: Any  # the Python type typer parses: int, float, str, bool, `int | None` ...
    default: Any
    field: str = ""  # the RunConfig field it sets ("layout.tensor"); "" for none
    phases: tuple[str, ...] = PHASES  # where it has an effect
    axis: bool = False  # a what-if sweeps it: comma-separated values there
    short: str = ""  # a one-letter alias ("-m")

    @property
    def negation(self) -> str:
        """A flag's off switch (`--no-fuse-epilogues`), or its own name for values."""
        return f"--no-{self.flag[2:]}" if self.kind is bool else self.flag

    def given(self, value: Any) -> str:
        """The option as the user wrote it, for messages."""
        if self.kind is bool:
            return self.flag if value else self.negation
        return f"{self.flag} {value}"


PHASE_HELP = "inference (= prefill), prefill, decode or training."
RUN_OPTIONS: tuple[Opt, ...] = (
    Opt("batch", "--batch", "Samples per batch (the global batch).", int, 1, "batch", axis=True),
    Opt("seq", "--seq", "Tokens per sample [default: the model's own input size].",
        int | None, None, "seq", axis=True),
    Opt("context", "--context", "Decode only: tokens in the KV cache [default: --seq].",
        int | None, None, "context", ("decode",), axis=True),
    Opt("dtype", "--dtype", "Datatype: fp16, bf16, fp32, tf32, fp8, int8, fp64 (float16, "
        "bfloat16, float32 accepted).", str, "fp16", "dtype", axis=True),
    Opt("phase", "--phase", f"Phase: {PHASE_HELP}", str, "inference", "phase"),
    Opt("dp", "--dp", "Data-parallel replicas of the layout.", int, 1, "layout.data", axis=True),
    Opt("tp", "--tp", "Tensor-parallel ways of a replica.", int, 1, "layout.tensor"),
    Opt("pp", "--pp", "Pipeline stages of a replica.", int, 1, "layout.pipeline"),
    Opt("gpus", "--gpus", "All devices of the layout: --dp is this / (--tp x --pp) "
        "(give --dp or --gpus).", int | None, None, axis=True),
    Opt("zero", "--zero", "ZeRO stage 0-3 over the data-parallel replicas.", int, 0,
        "layout.zero", TRAINING),
    Opt("micro_batch", "--micro-batch", "Pipeline micro-batch [default: the local batch, "
        "1 with --pp > 1].", int | None, None, "micro_batch"),
    Opt("virtual_stages", "--virtual-stages", "Interleaved 1F1B: model chunks a pipeline "
        "rank holds (1: plain 1F1B; needs --pp > 1).", int, 1, "virtual_stages"),
    Opt("optimizer", "--optimizer", "Training: sgd, sgd-momentum, adam, adamw, lamb, "
        "adafactor.", str, "adam", "optimizer", TRAINING),
    Opt("master_weights", "--master-weights", "Training: keep an fp32 master copy of "
        "16/8-bit weights.", bool, True, "master_weights", TRAINING),
    Opt("recompute", "--recompute", "Training: activation recomputation none, selective "
        "(attention) or full.", str, "none", "recompute", TRAINING),
    Opt("dp_overlap", "--dp-overlap", "Training: share of the gradient all-reduce hidden "
        "by the backward pass (0-1).", float, 0.0, "dp_overlap", TRAINING),
    Opt("first_input_grad", "--first-input-grad", "Training: also compute the first layer's "
        "input gradient (off: as frameworks do, the input being data).", bool, False,
        "first_input_grad", TRAINING),
    Opt("attention", "--attention", "eager: scores, softmax, context as 3 kernels; flash: "
        "one fused kernel.", str, "eager", "attention"),
    Opt("attention_dtype", "--attention-dtype", "The datatype attention computes in "
        "[default: --dtype; bf16 (fp16 without bf16) for fp8 and int8, whose stacks quantize "
        "the GEMMs only]; fp8 states an FP8 attention kernel.", str | None, None,
        "attention_dtype"),
    Opt("logits", "--logits", "Inference/prefill: logits of every position (all), or the "
        "last only.", str, "all", "logits", FORWARD),
    Opt("sequence_parallel", "--sequence-parallel", "With --tp: norms, residual adds and "
        "their activations split over the tensor ranks; off: every rank runs them whole.",
        bool, True, "sequence_parallel"),
    Opt("fuse_epilogues", "--fuse-epilogues", "Run activations (GELU, SwiGLU, a ReLU right "
        "after its convolution) in the epilogue of the GEMM before them.", bool, False,
        "fused_epilogues"),
    Opt("weights", "--weights", "The weights' storage (weight-only quantization): fp32, "
        "fp16, bf16, fp8, int8, int4 [default: --dtype]; in training, a LoRA fine-tune's "
        "frozen base (int4: QLoRA).", str | None, None, "weights"),
    Opt("group_size", "--group-size", "Weights sharing one scale and zero point in a "
        "grouped --weights format [default: int4 128, GPTQ/AWQ; int8 per channel].",
        int | None, None, "group_size"),
    Opt("lora_rank", "--lora-rank", "Training: a LoRA fine-tune with adapters of this rank "
        "(the base frozen: no weight gradients or optimizer state for it).", int | None, None,
        "lora_rank", TRAINING),
    Opt("lora_targets", "--lora-targets", "Training with --lora-rank: the projections "
        "adapted, of q, k, v, o, up, gate, down.", str, "q,k,v,o,up,gate,down",
        "lora_targets", TRAINING),
    Opt("kv_dtype", "--kv-dtype", "Inference: the KV cache's storage: fp32, fp16, bf16, fp8, "
        "int8 [default: --dtype].", str | None, None, "kv_dtype", INFERENCE),
    Opt("sustained", "--sustained", "Share of the kernels' expected throughput a step "
        "sustains (0-1] [default: the fitted value for training or inference; 1: off].",
        float | None, None, "sustained"),
    Opt("ideal", "--ideal", "Expected times = the roofline bound (no efficiency terms).",
        bool, False, "ideal"),
)  # fmt: skip
BY_NAME = {o.name: o for o in RUN_OPTIONS}
SERVING = frozenset(
    {"batch", "dtype", "tp", "pp", "attention", "attention_dtype", "sequence_parallel"}
    | {"fuse_epilogues"}
    | {"weights", "group_size", "kv_dtype", "sustained", "ideal"}
)
NUMPY = frozenset({"batch", "seq", "context", "dtype", "phase"})  # what `check` runs
ALL = frozenset(BY_NAME)

# the names people also write for a datatype or a phase
ALIASES = {
    "dtype": {
        "float16": "fp16",
        "half": "fp16",
        "bfloat16": "bf16",
        "float32": "fp32",
        "float": "fp32",
        "float64": "fp64",
        "double": "fp64",
        "float8": "fp8",
        "e4m3": "fp8",
        "tensorfloat32": "tf32",
    },
    "phase": {"train": "training", "infer": "inference", "generate": "decode"},
}
ALIASES["weights"] = ALIASES["kv_dtype"] = ALIASES["attention_dtype"] = ALIASES["dtype"]


def canonical(name: str, value: Any) -> Any:
    """A value in the tool's own spelling (float16 -> fp16, train -> training)."""
    if isinstance(value, str):
        key = value.strip().lower()
        return ALIASES.get(name, {}).get(key, key if name in ALIASES else value)
    return value


# ---------------------------------------------------------------- command-level options
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model name or alias, or a model file [or --run's]."),
]
RunFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--run",
        help="A run file (YAML: model, device, run: {batch, seq, layout, ...}; a published "
        "run of workloads/runs/ too); the flags given override it.",
    ),
]
SaveRunOpt = Annotated[
    Path | None,
    output_option("Also write this run as a run file for --run.", "--save-run"),
]


def option(o: Opt, command: str, default: Any) -> inspect.Parameter:
    """The typer parameter of one declared option in `command` (a what-if takes its sweep
    axes as comma-separated text)."""
    sweep = command == "whatif" and o.axis
    kind: Any = (str | None) if sweep else o.kind
    text = o.help + (" Comma-separated values are swept." if sweep else "")
    decls = [f"{o.flag}/{o.negation}"] if o.kind is bool else [o.flag]
    if default != o.default:
        text += f" [default here: {default}]" if o.kind is not bool else ""
    info = typer.Option(*decls, help=text)
    value = None if sweep else default
    return inspect.Parameter(
        o.name, inspect.Parameter.KEYWORD_ONLY, default=value, annotation=Annotated[kind, info]
    )


def scenario_command(
    group: typer.Typer,
    name: str,
    *,
    takes: Collection[str] = ALL,
    defaults: Mapping[str, Any] | None = None,
    save: bool = True,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register `body(spec, **own)` as command `name`: its parameters are the declared run
    options it `takes` (with per-command `defaults`), --model, --run (and --save-run), then
    the body's own options. The body receives a Spec (spec.py) built from them."""
    from .app import boundary
    from .spec import build_spec

    defaults = dict(defaults or {})

    def register(body: Callable[..., None]) -> Callable[..., None]:
        own = list(inspect.signature(body, eval_str=True).parameters.values())[1:]
        declared = [BY_NAME[n] for n in BY_NAME if n in takes]
        keyword = inspect.Parameter.KEYWORD_ONLY
        params = [
            inspect.Parameter("ctx", keyword, annotation=typer.Context),
            inspect.Parameter("model", keyword, default=None, annotation=ModelOpt),
            *(option(o, name, defaults.get(o.name, o.default)) for o in declared),
            inspect.Parameter("run_file", keyword, default=None, annotation=RunFileOpt),
        ]
        if save:
            params.append(
                inspect.Parameter("save_run", keyword, default=None, annotation=SaveRunOpt)
            )
        params += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]

        def command(**kwargs: Any) -> None:
            ctx = kwargs.pop("ctx")
            values = {o.name: kwargs.pop(o.name) for o in declared}
            spec = build_spec(
                ctx,
                name,
                values,
                model=kwargs.pop("model"),
                run_file=kwargs.pop("run_file"),
                save_run=kwargs.pop("save_run", None),
                hw=kwargs.get("hw"),
                defaults={o.name: defaults.get(o.name, o.default) for o in declared},
            )
            body(spec, **kwargs)

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__doc__ = body.__doc__
        command.__name__ = body.__name__
        group.command(name)(boundary(command))
        return body

    return register
