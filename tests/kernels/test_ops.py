"""Each kernel is a real PyTorch op: `torch.library.opcheck`, its FLOP formula under
`FlopCounterMode`, and `torch.compile(fullgraph=True)` / `torch.export` of a small model of each
kernel family on CPU, compared with eager.

FLOP counts are computed here by hand from each op's definition (2 per multiply-add of its
matrix products; the LIF neuron's elementwise operations), for a known shape.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from golden import load_golden  # noqa: E402
from kernel_checks import DEVICE, assert_close, cpu_only, needs_interpreter, needs_triton  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode

import zoo  # noqa: E402
from zoo.kernels.gated_linear_attention import bidirectional_gla  # noqa: E402
from zoo.kernels.gaussian_attention import gaussian_attention  # noqa: E402
from zoo.kernels.lif import multistep_lif  # noqa: E402
from zoo.kernels.linear_attention import linear_attention  # noqa: E402


def _randn(*shape, device="cpu", requires_grad=True):
    t = torch.randn(*shape, generator=torch.Generator().manual_seed(len(shape) + shape[-1])).to(device)
    return t.requires_grad_(requires_grad)


def _op_cases(impl: str, device: str = "cpu"):
    """(label, op overload, args) for opcheck: one small problem per op, the path forced by impl."""
    r = lambda *s: _randn(*s, device=device)  # noqa: E731
    gates = lambda: (F.logsigmoid(torch.randn(1, 9, 2, 16)) / 16).to(device).requires_grad_()  # noqa: E731
    return [
        ("linear_attention rala rope", torch.ops.zoo.linear_attention.default,
         (r(1, 2, 20, 16), r(1, 2, 20, 16), r(1, 2, 20, 16), "rala", [4, 5], 1e-6, impl, 16, 2, None)),
        ("bidirectional_gla", torch.ops.zoo.bidirectional_gla.default,
         (r(1, 9, 2, 16), r(1, 9, 2, 16), r(1, 9, 2, 32), gates(), gates(), 0.25, impl)),
        ("gaussian_attention", torch.ops.zoo.gaussian_attention.default,
         (r(1, 2, 20, 16), r(1, 2, 5, 16), r(1, 2, 5, 5), r(1, 2, 20, 16), impl)),
        ("multistep_lif", torch.ops.zoo.multistep_lif.default, (r(3, 2, 50), 2.0, 1.0, 0.0, 4.0, True, impl, True)),
    ]


@pytest.mark.parametrize("index", range(4), ids=["linear_attention", "bidirectional_gla", "gaussian_attention",
                                                 "multistep_lif"])
@pytest.mark.parametrize("impl", ["reference", pytest.param("triton", marks=needs_interpreter)])
def test_opcheck_cpu(impl, index):
    label, op, args = _op_cases(impl)[index]
    torch.library.opcheck(op, args)


@pytest.mark.gpu
@pytest.mark.parametrize("index", range(4), ids=["linear_attention", "bidirectional_gla", "gaussian_attention",
                                                 "multistep_lif"])
@pytest.mark.parametrize("impl", ["triton", "reference"])
def test_opcheck_cuda(impl, index):
    label, op, args = _op_cases(impl, "cuda")[index]
    torch.library.opcheck(op, args)


# ----------------------------------------------------------------------------- FLOPs

def _flops(fn, *tensors, backward: bool = False) -> int:
    with FlopCounterMode(display=False) as counter:
        out = fn(*tensors)
        if backward:
            out.backward(torch.ones_like(out))
    return counter.get_total_flops()


def _gla_inputs():
    q, k, a_f, a_b = (_randn(2, 10, 3, 16) for _ in range(4))
    return q, k, _randn(2, 10, 3, 32), a_f, a_b


# (label, public call, inputs, the forward's FLOPs from the definition)
FLOP_CASES = [
    # B=2, heads=3, N=12, d=16. rala: kv = K^T V and R(q) kv (2 N d^2 each), the softmax logits
    # mean(q) . k_j and the normaliser q_i . mean(kt) (2 N d each).
    ("linear_attention rala", lambda q, k, v: linear_attention(q, k, v, variant="rala"),
     lambda: [_randn(2, 3, 12, 16) for _ in range(3)], 2 * 3 * (2 * 12 * 16 * 16 * 2 + 2 * 12 * 16 * 2)),
    # inline: kv and q kv, and the one dot product q_i . mean(k)
    ("linear_attention inline", lambda q, k, v: linear_attention(q, k, v, variant="inline"),
     lambda: [_randn(2, 3, 12, 16) for _ in range(3)], 2 * 3 * (2 * 12 * 16 * 16 * 2 + 2 * 12 * 16)),
    # B=2, N=10, H=3, dk=16, dv=32: per direction and token, state update and read-out 2 dk dv each
    ("bidirectional_gla", bidirectional_gla, _gla_inputs, 2 * (2 * 10 * 3) * (2 * 16 * 32 + 2 * 16 * 32)),
    # B=1, H=2, N=20, m=5, d=16, e=8: distances 2 N m d, K1^T V and K1 T 2 N m e, M S 2 m^2 e
    ("gaussian_attention", gaussian_attention,
     lambda: [_randn(1, 2, 20, 16), _randn(1, 2, 5, 16), _randn(1, 2, 5, 5), _randn(1, 2, 20, 8)],
     1 * 2 * (2 * 20 * 5 * 16 + 2 * 20 * 5 * 8 + 2 * 5 * 5 * 8 + 2 * 20 * 5 * 8)),
    # T=3 steps of 2 x 50 neurons: charge 4, fire 1, reset 1 per neuron and step
    ("multistep_lif", multistep_lif, lambda: [_randn(3, 2, 50)], 3 * 2 * 50 * (4 + 1 + 1)),
]


@pytest.mark.parametrize("label, fn, inputs, expected", FLOP_CASES, ids=[c[0] for c in FLOP_CASES])
def test_flop_formula_counts_the_definition(label, fn, inputs, expected, monkeypatch):
    monkeypatch.setenv("ZOO_KERNELS_IMPL", "reference")
    assert _flops(fn, *inputs()) == expected


@needs_triton
@pytest.mark.parametrize("label, fn, inputs, expected", FLOP_CASES, ids=[c[0] for c in FLOP_CASES])
def test_flop_formula_of_the_triton_backward(label, fn, inputs, expected, monkeypatch):
    """Forward and the Triton backward op: twice the forward for products (two input gradients
    each); the neuron's BPTT 17 operations per neuron and step (membrane recomputed)."""
    monkeypatch.setenv("ZOO_KERNELS_IMPL", "triton")
    backward = 3 * 2 * 50 * 17 if label == "multistep_lif" else 2 * expected
    assert _flops(fn, *(t.to(DEVICE).detach().requires_grad_() for t in inputs()), backward=True) == \
        expected + backward


# ----------------------------------------------------------------------------- compile and export of the models

def _model(family: str):
    """(a small model of the family with the official fixture's config, its input)."""
    import test_inline
    import test_ravlt
    import test_soft
    import test_vig
    if family in ("ravlt", "mavit"):
        golden = load_golden("ravlt__tiny_cfg" if family == "ravlt" else "mala__tiny_cfg")
        return test_ravlt.build_classifier(golden), golden.input
    if family == "inline":
        golden = load_golden("inline__deit_tiny_cfg")
        return test_inline.build(golden), golden.input
    if family == "vig":
        golden = load_golden("vig__h_tiny_cfg")
        return test_vig.build_hier(golden), golden.input
    if family == "soft":
        golden, model = test_soft.build("soft__tiny_cfg", kernel_method="fused")
        return model, golden.input
    golden = load_golden("maxformer__tiny_cfg")
    c = golden.constructor
    return zoo.create_model("maxformer_10_384", embed_dim=c["embed_dims"], num_classes=c["num_classes"],
                            T=c["T"]), golden.input


FAMILIES = ["ravlt", "mavit", "inline", "vig", "soft", "maxformer"]
KERNEL_OPS = {"ravlt": "linear_attention", "mavit": "linear_attention", "inline": "linear_attention",
              "vig": "bidirectional_gla", "soft": "gaussian_attention", "maxformer": "multistep_lif"}


@cpu_only
@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_compile_fullgraph_and_export_match_eager(family, monkeypatch):
    """Dynamo captures each model in one graph with the kernel op in it (fullgraph), AOTAutograd
    traces it through the op's fake kernel, and the exported program runs it. The backend is
    aot_eager: Inductor's C++ code generation for a whole model takes over ten minutes on two
    cores and tests nothing about the op (test_inductor_compiles_every_op compiles the ops)."""
    monkeypatch.delenv("ZOO_KERNELS_IMPL", raising=False)
    torch.manual_seed(0)
    model, image = _model(family)
    model = model.eval()
    image = image[:1]
    with torch.no_grad():
        eager = model(image)
        torch._dynamo.reset()
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")(image)
        exported = torch.export.export(model, (image,))
        from_export = exported.module()(image)
    op = getattr(torch.ops.zoo, KERNEL_OPS[family]).default
    graphs = [m.graph for m in exported.graph_module.modules() if isinstance(m, torch.fx.GraphModule)]
    assert any(node.target == op for graph in graphs for node in graph.nodes), \
        f"{op} is not in the exported graph (nor in its subgraphs, e.g. autocast regions)"
    # SOFT's 20 Newton steps towards K2^-1 amplify float32 rounding (eps 1.2e-7) by up to about the
    # condition number of K2 (~1e3 for these landmarks); the other families' float32 ratio stands.
    ratio = 1e3 * torch.finfo(torch.float32).eps if family == "soft" else None
    assert_close("torch.compile", compiled, eager, ratio)
    assert_close("torch.export", from_export, eager, ratio)


class _EveryOp(torch.nn.Module):
    """The four ops in one graph, with a product before and after each (what Inductor fuses around)."""

    def forward(self, q, landmarks, mixing, gates):
        b, h, n, d = q.shape
        y = linear_attention(q * 2, q, q, variant="rala", rope_hw=(4, n // 4))
        tokens = y.transpose(1, 2)                                     # (B, N, H, d)
        o = bidirectional_gla(tokens, tokens, tokens, gates, gates)
        x = gaussian_attention(o.transpose(1, 2), landmarks, mixing, y)
        return multistep_lif(x.flatten(2).transpose(0, 1)).sum(0) + x.flatten(2).mean(0)


@cpu_only
@pytest.mark.slow
def test_inductor_compiles_every_op(monkeypatch):
    """torch.compile with Inductor (C++ on CPU) keeps each op as an extern call, forward and backward.

    With CI set, as on GitHub Actions: there Inductor refuses an implicit fallback for an op that has a
    decomposition unless the op is on its FALLBACK_ALLOW_LIST (kernels/_dispatch.py puts it there).
    """
    monkeypatch.delenv("ZOO_KERNELS_IMPL", raising=False)
    monkeypatch.setenv("CI", "true")
    q = _randn(2, 2, 12, 16, requires_grad=False)
    landmarks, mixing = _randn(2, 2, 3, 16, requires_grad=False), _randn(2, 2, 3, 3, requires_grad=False) / 3
    gates = (F.logsigmoid(_randn(2, 12, 2, 16, requires_grad=False)) / 16)
    inputs = [t.requires_grad_() for t in (q, landmarks, mixing, gates)]
    module = _EveryOp()
    eager = module(*inputs)
    eager_grads = torch.autograd.grad(eager.sum(), inputs)
    torch._dynamo.reset()
    compiled = torch.compile(module, fullgraph=True)(*inputs)
    compiled_grads = torch.autograd.grad(compiled.sum(), inputs)
    assert_close("output", compiled, eager)
    for name, g, e in zip(("dq", "dlandmarks", "dmixing", "dgates"), compiled_grads, eager_grads):
        assert_close(name, g, e)
