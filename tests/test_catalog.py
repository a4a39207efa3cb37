"""The workload catalog against the published dataset and published parameter counts."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from roofline.cli import app
from roofline.layers import GEMM_KINDS
from roofline.scenario import RunConfig
from roofline.validate import active_params, validate
from roofline.workloads import get_workload, list_workloads

# Every model of shared/reference/ai-and-memory-wall.md, and the ones users run today.
DATASET = [
    "seq2seq",
    "transformer",
    "transformer-big",
    "elmo",
    "bert-large",
    "gpt-1",
    "gpt-2",
    "roberta-large",
    "megatron",
    "albert-xxlarge",
    "t-nlg",
    "electra-large",
    "gpt-3",
    "gshard",
    "baidu-recsys-c",
    "baidu-recsys-e",
    "alexnet",
    "vgg-19",
    "inceptionv3",
    "resnet152",
    "inceptionv4",
    "xception",
    "resnext101-64x4d",
    "densenet201",
]
MODERN = [
    "resnet-50",
    "vit-b-16",
    "llama-2-7b",
    "llama-2-13b",
    "llama-2-70b",
    "llama-3-8b",
    "llama-3-70b",
    "mixtral-8x7b",
    "t5-base",
]


def test_every_model_is_in_the_catalog():
    keys = {w.key for w in list_workloads()}
    assert set(DATASET + MODERN) <= keys


@pytest.mark.parametrize("key", DATASET + MODERN)
def test_every_model_runs_forward_and_training(key):
    w = get_workload(key)
    seq = 64 if w.arch.takes_seq else None
    fwd = w.layers(RunConfig(batch=2, seq=seq))
    train = RunConfig(batch=2, seq=seq, phase="training", optimizer=None)
    step = w.layers(replace(train, first_input_grad=True))
    assert fwd.total_flops.sum() > 0 and (fwd.bytes > 0).all()
    assert step.total_flops.sum() == pytest.approx(3 * fwd.total_flops.sum())
    # by default the first layer's input gradient is skipped (its input is data): a
    # GEMM-like first layer (a convolution, not an embedding) runs 2x its forward, not 3x
    first = fwd.total_flops[0] if fwd.kind[0] in GEMM_KINDS and fwd.count[0] == 1 else 0.0
    skipped = w.layers(train).total_flops.sum()
    assert skipped == pytest.approx(3 * fwd.total_flops.sum() - first)
    # with Adam, each parameter's update adds 12 FLOPs once a step (optimizers.py)
    adam = w.layers(RunConfig(batch=2, seq=seq, phase="training", optimizer="adam"))
    assert adam.total_flops.sum() == pytest.approx(skipped + 12 * w.params)


# Published parameter counts, written here from the papers and model cards (not the YAML).
PUBLISHED_PARAMS = [
    ("resnet-50", 25_557_032, 1e-6),  # torchvision resnet50
    ("vit-b-16", 86_567_656, 1e-6),  # torchvision vit_b_16
    ("llama-2-7b", 6_738_415_616, 1e-6),  # HF Llama-2-7b-hf
    ("llama-2-13b", 13_015_864_320, 1e-6),
    ("llama-2-70b", 68_976_648_192, 1e-6),  # grouped-query attention, 8 KV heads
    ("llama-3-8b", 8_030_261_248, 1e-6),
    ("llama-3-70b", 70_553_706_496, 1e-6),
    ("mixtral-8x7b", 46.7e9, 0.005),  # model card: 46.7B total
    ("t5-base", 222_903_552, 1e-6),  # HF t5-base
    ("bert-large", 335_141_888, 1e-6),  # HF bert-large-uncased with pooler
    ("roberta-large", 355_359_744, 1e-6),  # HF roberta-large
    ("inceptionv3", 23_834_568, 1e-6),  # torchvision without the aux classifier
    ("densenet201", 20_013_928, 1e-6),  # torchvision densenet201
    ("resnext101-64x4d", 83_455_272, 1e-6),  # torchvision resnext101_64x4d
    ("vgg-19", 143_667_240, 1e-6),  # torchvision vgg19
    ("resnet152", 60_192_808, 1e-6),  # torchvision resnet152
    ("xception", 22_855_952, 1e-6),  # Chollet 2017, Table 3
    ("inceptionv4", 42.68e6, 0.002),  # timm inception_v4
    ("elmo", 93.6e6, 0.002),  # allennlp 2x4096_512_2048cnn_2xhighway
    ("seq2seq", 384e6, 0.002),  # Sutskever et al. 2014
    # HF bigscience/bloom model card: '176,247,271,424 parameters'; by hand: 70 x (12 h^2 +
    # 13 h) + 250,880 h + 4 h at h = 14,336 (the embedding rows padded from 250,680)
    ("bloom-176b", 176_247_271_424, 0),
]


@pytest.mark.parametrize(
    ("key", "params", "rel"), PUBLISHED_PARAMS, ids=[p[0] for p in PUBLISHED_PARAMS]
)
def test_parameter_counts_match_publications(key, params, rel):
    assert get_workload(key).params == pytest.approx(params, rel=rel)


def test_mixtral_active_parameters():
    # Mixtral model card: 12.9B active per token (2 of 8 experts)
    assert active_params(get_workload("mixtral-8x7b")) == pytest.approx(12.9e9, rel=0.005)


def test_resnet50_and_vgg19_flops_match_torchvision():
    # torchvision metadata, multiply-adds x 2: ResNet-50 4.09 G, VGG-19 19.63 G MACs
    assert get_workload("resnet-50").layers(RunConfig()).total_flops.sum() == pytest.approx(
        2 * 4.09e9, rel=0.01
    )
    assert get_workload("vgg-19").layers(RunConfig()).total_flops.sum() == pytest.approx(
        2 * 19.63e9, rel=0.01
    )


def test_validation_meets_the_targets():
    """Params within 5%, inference FLOPs within 10% of every published figure, except the
    figures flagged as inconsistent, each with a reason."""
    checks = validate()
    judged = [c for c in checks if c.metric in ("params", "inference_flops")]
    assert len(judged) >= 40
    for c in judged:
        assert c.ok, (c.model, c.metric, c.rel_error)
        if c.flagged:
            assert len(c.reason) > 20
        else:
            assert abs(c.rel_error) <= c.tolerance
    unflagged = [c for c in judged if not c.flagged]
    assert len(unflagged) >= 35


def test_known_inconsistencies_are_flagged():
    flagged = {(c.model, c.metric): c.reason for c in validate() if c.flagged}
    # the ones shared/reference/ai-and-memory-wall.md lists
    assert "(1.17)" in flagged[("alexnet", "memory_total")]
    assert "(26.11)" in flagged[("gpt-2", "memory_total")]
    assert "2014" in flagged[("gpt-2", "memory_input")]
    assert "GPT-2" in flagged[("roberta-large", "params")]
    assert ("gpt-1", "date") in flagged
    # and the ones this catalog found
    assert "multiply-accumulate" in flagged[("inceptionv3", "inference_flops")]
    assert "(11.72)" in flagged[("gpt-2", "memory_optimizer_ratio")]
    assert ("inceptionv4", "params") in flagged
    assert ("resnet152", "params") in flagged
    assert ("vgg-19", "params") in flagged
    assert ("albert-xxlarge", "params") in flagged


def test_training_flops_close_to_published_where_setups_are_complete():
    # 3 x forward FLOPs x samples seen vs the dataset, for runs whose papers give the setup
    by = {(c.model, c.metric): c for c in validate()}
    for key in ("bert-large", "megatron", "albert-xxlarge", "gpt-3", "roberta-large", "vgg-19"):
        assert abs(by[(key, "training_flops")].rel_error) < 0.10, key
    # GPT-3 by hand: 6 x 175e9 params x 300e9 tokens = 3.15e23, plus attention
    assert by[("gpt-3", "training_flops")].computed == pytest.approx(3.15e23, rel=0.05)


def test_validate_cli_json():
    res = CliRunner().invoke(app, ["validate", "--format", "json"])
    assert res.exit_code == 0
    rows = json.loads(res.stdout)
    assert {"model", "metric", "computed", "published", "rel_error", "flagged", "reason"} <= set(
        rows[0]
    )
    bert = next(r for r in rows if r["model"] == "bert-large" and r["metric"] == "params")
    assert bert["computed"] == 335_141_888 and bert["published"] == 330e6
    assert bert["rel_error"] == pytest.approx(335_141_888 / 330e6 - 1)
    table = CliRunner().invoke(app, ["validate"])
    assert table.exit_code == 0 and "0 failing" in table.stdout
