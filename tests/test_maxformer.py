"""Max-Former against the official implementation's golden fixtures, its checkpoint layout, and the spec's figures."""
from __future__ import annotations

import argparse
import re
from collections import OrderedDict

import pytest
import timm
import torch
from golden import Golden, load_golden

import zoo
from zoo.layers.spiking import MultiStepLIF, spiking_stats
from zoo.models._checkpoint import CheckpointMismatchError
from zoo.models.maxformer import checkpoint_filter_fn, official_key_order

FIXTURES = ["maxformer__tiny_cfg", "maxformer__tiny_cfg_t2_heads2_nonsquare"]
HEADS_KEY = "stage3[i].attn.num_heads for i in 0..6"


def zoo_kwargs(golden: Golden) -> dict:
    """The official constructor (and post-construction) arguments of a fixture, in this model's terms."""
    c = golden.constructor
    assert (c["mlp_ratios"], c["depths"], c["in_channels"]) == (4, 10, 3)
    heads = golden.meta.get("post_construction", {}).get(HEADS_KEY, c["embed_dims"] // 64)
    return dict(embed_dim=c["embed_dims"], num_classes=c["num_classes"], T=c["T"], num_heads=heads)


def build(golden: Golden, **kwargs) -> torch.nn.Module:
    model = zoo.create_model("maxformer_10_384", **{**zoo_kwargs(golden), **kwargs}).eval()
    model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
    return model


@pytest.mark.parametrize("name", FIXTURES)
def test_matches_official_float32(name):
    golden = load_golden(name)
    model = build(golden)
    model.set_lif_impl("reference")
    with torch.no_grad():
        golden.assert_close(model(golden.input))


@pytest.mark.parametrize("name", FIXTURES)
def test_matches_official_float64(name):
    """Both sides agree in float64 too (the official float32 output is 1e-7 from its float64 evaluation)."""
    golden = load_golden(name)
    model = build(golden).double()
    with torch.no_grad():
        out = model(golden.input.double())
    assert out.dtype == torch.float64
    golden.assert_close(out)


def spec_key_order() -> list[str]:
    """The official registration order, written out from specs/maxformer.md sec. 5."""
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    keys = []
    for e in ["embed1", "embed2", "embed3", "embed4"]:
        keys += [f"patch_embed1.{e}.embed_conv.weight"] + [f"patch_embed1.{e}.embed_bn.{b}" for b in bn]
    for pe in ["patch_embed2", "patch_embed3"]:
        for e in ["max_embed1", "embed1", "max_embed2"]:
            keys += [f"{pe}.{e}.embed_conv.weight"] + [f"{pe}.{e}.embed_bn.{b}" for b in bn]

    def mlp(p):
        return ([f"{p}.mlp.fc1_conv.weight", f"{p}.mlp.fc1_conv.bias"] + [f"{p}.mlp.fc1_bn.{b}" for b in bn]
                + [f"{p}.mlp.fc2_conv.weight", f"{p}.mlp.fc2_conv.bias"] + [f"{p}.mlp.fc2_bn.{b}" for b in bn])

    keys += ["stage1.0.mixer.conv5.weight", "stage1.0.mixer.conv5.bias"]
    keys += [f"stage1.0.mixer.conv5_bn.{b}" for b in bn] + mlp("stage1.0")
    for i in range(2):
        keys += [f"stage2.{i}.mixer.conv.weight", f"stage2.{i}.mixer.conv.bias"]
        keys += [f"stage2.{i}.mixer.conv_bn.{b}" for b in bn] + mlp(f"stage2.{i}")
    for i in range(7):
        for n in ["q", "k", "v"]:
            keys += [f"stage3.{i}.attn.{n}_conv.weight"] + [f"stage3.{i}.attn.{n}_bn.{b}" for b in bn]
        keys += [f"stage3.{i}.attn.proj_conv.weight", f"stage3.{i}.attn.proj_conv.bias"]
        keys += [f"stage3.{i}.attn.proj_bn.{b}" for b in bn] + mlp(f"stage3.{i}")
    return keys + ["head.weight", "head.bias"]


def test_official_key_order():
    order = spec_key_order()
    assert len(order) == 398
    assert official_key_order() == order
    assert set(order) == set(load_golden("maxformer__tiny_cfg").state_dict)


def official_training_checkpoint(state_dict: dict) -> dict:
    """What timm 0.6.12's CheckpointSaver (the official train.py) writes, weights in registration order."""
    return {
        "epoch": 199,
        "arch": "maxformer_10_384",
        "state_dict": OrderedDict((k, state_dict[k]) for k in spec_key_order()),
        "optimizer": {"state": {}, "param_groups": [{"lr": 2.7e-3, "params": [0]}]},
        "version": 2,
        "args": argparse.Namespace(model="maxformer_10_384", time_step=4, batch_size=64, lr=2.7e-3),
        "amp_scaler": {"scale": 65536.0},
        "metric": 77.78,
    }


@pytest.mark.parametrize("name", FIXTURES)
def test_official_file_loads_through_pretrained_path(name, tmp_path):
    golden = load_golden(name)
    path = tmp_path / "10-64-T4.pth.tar"
    torch.save(official_training_checkpoint(golden.state_dict), path)
    # The file needs argparse.Namespace allow-listed under weights_only=True ...
    with pytest.raises(Exception, match="Namespace"):
        torch.load(path, weights_only=True)
    # ... and loads through pretrained=True (the zoo's loader allow-lists it).
    kwargs = zoo_kwargs(golden)
    model = timm.create_model(
        "maxformer_10_384", pretrained=True,
        pretrained_cfg_overlay=dict(file=str(path), num_classes=kwargs["num_classes"]),
        **kwargs).eval()
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_older_key_names_load_by_position():
    """Files whose names differ from the current code load by position, as the official test.py does."""
    golden = load_golden("maxformer__tiny_cfg")
    renamed = OrderedDict((f"layer{i:03d}." + k.split(".")[-1], golden.state_dict[k])
                          for i, k in enumerate(spec_key_order()))
    model = zoo.create_model("maxformer_10_384", **zoo_kwargs(golden)).eval()
    model.load_state_dict(checkpoint_filter_fn({"state_dict": renamed}, model))
    with torch.no_grad():
        golden.assert_close(model(golden.input))
    # A permutation that shapes can see is refused, naming the position.
    items = list(renamed.items())
    items[0], items[6] = items[6], items[0]  # stem conv1 weight <-> stem conv2 weight
    with pytest.raises(CheckpointMismatchError, match="position 0"):
        checkpoint_filter_fn(OrderedDict(items), model)
    with pytest.raises(CheckpointMismatchError, match="397"):
        checkpoint_filter_fn(OrderedDict(items[:-1]), model)


def test_checkpoint_mismatch_lists_the_keys():
    golden = load_golden("maxformer__tiny_cfg")
    model = zoo.create_model("maxformer_10_384", **zoo_kwargs(golden))
    state = dict(golden.state_dict)
    # Official names, one missing and one extra: not positional (counts agree), so the keys are listed.
    del state["stage3.2.attn.k_bn.running_var"]
    state["stage3.2.attn.k_bn.extra"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError) as err:
        checkpoint_filter_fn(state, model)
    message = str(err.value)
    assert "missing" in message and "stages.2.blocks.2.mixer.k.bn.running_var" in message
    assert "unexpected" in message and "stages.2.blocks.2.mixer.k.bn.extra" in message


def test_other_num_classes_and_in_chans_keep_the_trunk():
    golden = load_golden("maxformer__tiny_cfg")
    kwargs = {**zoo_kwargs(golden), "num_classes": 5, "in_chans": 1}
    model = zoo.create_model("maxformer_10_384", **kwargs)
    state = checkpoint_filter_fn(golden.state_dict, model)
    model.load_state_dict(state)
    assert torch.equal(state["stages.2.blocks.6.mlp.fc2.conv.weight"],
                       golden.state_dict["stage3.6.mlp.fc2_conv.weight"])
    assert state["head.fc.weight"].shape == (5, 64)
    # Grey input: the first conv's RGB filters summed.
    torch.testing.assert_close(state["stem.conv1.conv.weight"],
                               golden.state_dict["patch_embed1.embed1.embed_conv.weight"].sum(1, keepdim=True))


def test_no_state_between_calls():
    """The official neurons keep their membrane until reset_net; ours start from 0 every call."""
    golden = load_golden("maxformer__tiny_cfg")
    model = build(golden)
    with torch.no_grad():
        first = model(golden.input)
        model(torch.randn_like(golden.input))
        again = model(golden.input)
    assert torch.equal(first, again)


def test_frame_sequence_input_is_the_official_event_path():
    """(B, T, C, H, W) frames are taken as the time steps; repeating the image gives the image's output."""
    golden = load_golden("maxformer__tiny_cfg")
    model = build(golden)
    frames = golden.input.unsqueeze(1).repeat(1, model.T, 1, 1, 1)
    with torch.no_grad():
        golden.assert_close(model(frames))
        assert model(frames[:, :2]).shape == (2, 10)  # any number of frames


def test_time_steps_from_tag_and_argument():
    assert zoo.create_model("maxformer_10_384").T == 4
    assert zoo.create_model("maxformer_10_768.t1_in1k", embed_dim=64).T == 1
    assert zoo.create_model("maxformer_10_512.t4_in1k", embed_dim=64).T == 4
    assert zoo.create_model("maxformer_10_768.t1_in1k", embed_dim=64, T=2).T == 2
    with pytest.raises(ValueError, match="T"):
        zoo.create_model("maxformer_10_384", embed_dim=64, T=0)


def test_sizes_must_be_multiples_of_16():
    model = zoo.create_model("maxformer_10_384", embed_dim=64, T=1).eval()
    with pytest.raises(ValueError, match="multiples of 16, got 40x48"):
        model(torch.randn(1, 3, 40, 48))
    with pytest.raises(ValueError, match="multiples of 16, got 32x40"):
        model.forward_intermediates(torch.randn(1, 3, 32, 40))
    with torch.no_grad():
        assert model(torch.randn(1, 3, 48, 80)).shape == (1, 1000)


def test_features_are_time_means_of_the_streams():
    golden = load_golden("maxformer__tiny_cfg_t2_heads2_nonsquare")
    model = build(golden)
    with torch.no_grad():
        final, per_step = model.forward_intermediates(golden.input, time_mean=False)
        means = model.forward_intermediates(golden.input, intermediates_only=True)
        features = model.forward_features(golden.input)
    assert [tuple(f.shape) for f in per_step] == [(2, 2, 16, 12, 20), (2, 2, 32, 6, 10), (2, 2, 64, 3, 5)]
    for mean, steps in zip(means, per_step):
        torch.testing.assert_close(mean, steps.mean(1))
    assert torch.equal(final, per_step[-1]) and torch.equal(features, final)
    with torch.no_grad():
        golden.assert_close(model.forward_head(features))
        rate = model.forward_head(features, pre_logits=True)
    # Pre-logits are the head LIF's firing rate: multiples of 1/T.
    assert torch.equal(rate * 2, (rate * 2).round())


# Firing rates of the official run, from the fixture's notes (3 decimals), as our module names.
OFFICIAL_LIF_NAMES = {
    "pe1.embed2": "stem.conv2.lif", "pe1.embed3": "stem.conv3.lif",
    "s1.0.mix.conv5": "stages.0.blocks.0.mixer.lif",
    "s1.0.fc1_lif": "stages.0.blocks.0.mlp.fc1.lif", "s1.0.fc2_lif": "stages.0.blocks.0.mlp.fc2.lif",
    "pe2.max_embed1": "stages.1.downsample.conv1.lif", "pe2.embed1": "stages.1.downsample.conv2.lif",
    "pe3.max_embed1": "stages.2.downsample.conv1.lif", "pe3.embed1": "stages.2.downsample.conv2.lif",
    "head_lif": "head.lif",
}


def official_rate_name(short: str) -> str:
    if short in OFFICIAL_LIF_NAMES:
        return OFFICIAL_LIF_NAMES[short]
    stage, block, what = re.fullmatch(r"s(\d)\.(\d)\.(.+)", short).groups()
    prefix = f"stages.{int(stage) - 1}.blocks.{block}"
    if what.startswith("mix.conv"):
        return f"{prefix}.mixer.lif"
    if what in ("fc1_lif", "fc2_lif"):
        return f"{prefix}.mlp.{what[:3]}.lif"
    return f"{prefix}.mixer.{what}"  # x_lif, q_lif, k_lif, v_lif, attn_lif


@pytest.mark.parametrize("name", FIXTURES)
def test_firing_rates_match_the_official_run(name):
    golden = load_golden(name)
    note = next(n for n in golden.meta["notes"] if n.startswith("Spike rates"))
    listed = dict(re.findall(r"([\w.]+) (0\.\d{3})", note.split(": ", 1)[1].split(". Ranges")[0]))
    assert len(listed) == 30
    stats = spiking_stats(build(golden), golden.input)
    assert len(stats.firing_rates) == 65
    for short, rate in listed.items():
        assert stats.firing_rates[official_rate_name(short)] == pytest.approx(float(rate), abs=5.1e-4), short
    mean = float(re.search(r"Mean over the 65 LIFs (0\.\d+)", note).group(1))
    assert stats.mean_firing_rate == pytest.approx(mean, abs=5.1e-4)
    assert stats.firing_rates["stages.2.blocks.0.mixer.attn_lif"] > 0.2  # attention is active


def test_synaptic_operations_and_energy_by_hand():
    """Conv on an analog input counts MACs; on spikes, rate * MACs; attention products on their spike operand."""
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1, bias=False), MultiStepLIF(), torch.nn.Conv2d(2, 3, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[[[4.0]]], [[[-1.0]]]]))
    x = torch.tensor([0.6, 0.3, 0.1, 0.7]).reshape(2, 1, 2, 1)  # (T=2 as the batch dim of a time-major stack)
    stats = spiking_stats(model, x)
    # Channel 0 gets 4x: t=0 h = [1.2, 0.6] -> spikes [1, 0]; t=1 h = v/2 + [0.2, 1.4] = [0.2, 1.7] -> [0, 1];
    # channel 1 (-x) never fires: 2 spikes of 8.
    assert stats.firing_rates == {"1": 0.25}
    # Per "image" (x.shape[0] = 2): conv 0, 2 outputs x 2 positions x fan-in 1; conv 2, 3 x 2 x fan-in 2.
    assert [(layer.name, layer.macs, layer.input_rate) for layer in stats.layers] == [
        ("0", 4.0, None), ("2", 12.0, 0.25)]
    assert stats.mac_ops == 4.0 and stats.sops == 3.0
    assert stats.energy_mj == pytest.approx((4.6 * 4.0 + 0.9 * 3.0) * 1e-9)


def test_dense_macs_match_the_spec():
    """maxformer_10_384 at 224, per time step: 5.309 G MACs, 16.3 M on the analog input, 67.4 M in q(k^T v)."""
    torch.manual_seed(0)
    model = zoo.create_model("maxformer_10_384", T=1).eval()
    stats = spiking_stats(model, torch.randn(1, 3, 224, 224))
    assert stats.dense_macs == pytest.approx(5.309e9, rel=2e-4)
    assert stats.mac_ops == pytest.approx(16.3e6, rel=4e-3)
    attention = sum(layer.macs for layer in stats.layers if layer.name.endswith(("k_t_v", "q_kv")))
    assert attention == pytest.approx(67.4e6, rel=1e-3)
    assert len([layer for layer in stats.layers if not layer.spiking]) == 1  # only the first conv
