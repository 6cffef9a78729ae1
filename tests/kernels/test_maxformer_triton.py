"""Max-Former with every LIF on the Triton kernel (the interpreter on CPU): fixtures, and training gradients."""
from __future__ import annotations

import pytest
import torch
from golden import load_golden  # noqa: E402
from kernel_checks import DEVICE, needs_triton  # noqa: E402

import zoo  # noqa: E402
from zoo.models.maxformer import checkpoint_filter_fn  # noqa: E402

pytestmark = needs_triton
FIXTURES = ["maxformer__tiny_cfg", "maxformer__tiny_cfg_t2_heads2_nonsquare"]


def build(golden, impl):
    c = golden.constructor
    heads = golden.meta.get("post_construction", {}).get("stage3[i].attn.num_heads for i in 0..6", 1)
    model = zoo.create_model("maxformer_10_384", embed_dim=c["embed_dims"], num_classes=c["num_classes"],
                             T=c["T"], num_heads=heads, lif_impl=impl)
    model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
    return model.to(DEVICE).eval()


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_on_the_triton_neuron(name):
    golden = load_golden(name)
    model = build(golden, "triton")
    assert all(m.impl == "triton" for m in model.modules() if hasattr(m, "v_threshold"))
    with torch.no_grad():
        golden.assert_close(model(golden.input.to(DEVICE)).cpu())


def test_training_gradients_agree_between_neuron_paths():
    """Train-mode forward + backward through all 65 LIFs: Triton BPTT vs autograd of the reference loop."""
    golden = load_golden("maxformer__tiny_cfg_t2_heads2_nonsquare")
    x = golden.input[:, :, :32, :48].to(DEVICE).double()
    results = []
    for impl in ("reference", "triton"):
        model = build(golden, impl).double().train()
        out = model(x)
        out.logsumexp(-1).sum().backward()
        results.append((out.detach(), {n: p.grad for n, p in model.named_parameters()}))
    (out_r, grads_r), (out_t, grads_t) = results
    assert torch.equal(out_t, out_r)
    assert sum(g.abs().sum() for g in grads_r.values()) > 0
    for name, grad in grads_r.items():
        torch.testing.assert_close(grads_t[name], grad, atol=1e-10, rtol=1e-8, msg=name)
