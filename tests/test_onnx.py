"""ONNX: each family's smallest variant, exported with `torch.onnx.export(..., dynamo=True)`, runs in
onnxruntime with a dynamic batch and gives the eager output.

The ONNX graph is converted from the ExportedProgram test_export.py checks (tests/exporting.py: one trace
per model and process), as a user would call torch.onnx.export. The zoo's kernels are torch custom ops
(`torch.ops.zoo.*`); each registers its plain-PyTorch reference as its decomposition
(kernels/_dispatch.py), which torch.onnx applies by itself.

onnxruntime runs its own kernels (other GEMM blockings, fused LayerNorm / GELU): each op rounds
differently by a few float32 ulps of its output, and the differences add up over the network's depth;
ONNX_ULPS bounds the total relative to the output's magnitude.
"""
from __future__ import annotations

import pytest
import torch
from exporting import EXAMPLE_BATCH, assert_outputs_match, exported, family_params, forget, image

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")  # torch.onnx's dynamo exporter translates through it

from zoo.kernels import reference_decompositions, triton_interpreted  # noqa: E402
from zoo.kernels.gated_linear_attention import bidirectional_gla  # noqa: E402
from zoo.kernels.gaussian_attention import gaussian_attention  # noqa: E402
from zoo.kernels.lif import multistep_lif  # noqa: E402
from zoo.kernels.linear_attention import linear_attention, linear_attention_reference  # noqa: E402

ONNX_ULPS = 1024


def session(program: torch.export.ExportedProgram, example: tuple) -> ort.InferenceSession:
    onnx_program = torch.onnx.export(program, example, dynamo=True, verbose=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # no more threads than pytest gives torch
    return ort.InferenceSession(onnx_program.model_proto.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def run_in(sess: ort.InferenceSession):
    (name,) = [i.name for i in sess.get_inputs()]
    return lambda x: [torch.from_numpy(y) for y in sess.run(None, {name: x.numpy()})]


# Families whose ONNX conversion fails because of model code (xfail, strict: the test flips when fixed).
ONNX_FAILURES = {
    "soft_norm": "onnxruntime's output differs from eager at batch 3 (max abs diff 0.026, 1.75e-4 allowed), "
                 "not at batch 1: SOFT-Norm's Newton start is a max over the WHOLE batch "
                 "(zoo/layers/soft_attention.py:84 newton_inverse_halving, reduce_max = torch.max(x)); the "
                 "graph op that converts wrongly is not isolated yet",
}


@pytest.mark.parametrize("row", family_params(ONNX_FAILURES))
def test_onnx_export_runs_in_onnxruntime_with_a_dynamic_batch_and_gives_the_eager_output(row):
    try:
        model, program = exported(row.name)
        sess = session(program, (image(row, EXAMPLE_BATCH),))
        (batch_dim, *rest), = [i.shape for i in sess.get_inputs()]
        assert isinstance(batch_dim, str) and rest == list(row.input_size), "the batch dim must be symbolic"
        assert_outputs_match(run_in(sess), model, row, ONNX_ULPS)
    finally:
        forget(row.name)  # the last check that uses this export


# One small call of each public kernel function, as the models make it.
def _linear_attention(q):
    return linear_attention(q, q.flip(-1), q * 0.5, variant="inline")


def _gaussian_attention(q):
    landmarks = q[:, :, :4]
    mixing = torch.eye(4).expand(*q.shape[:2], 4, 4)
    return gaussian_attention(q, landmarks, mixing, q * 0.5)


def _bidirectional_gla(q):
    gates = torch.nn.functional.logsigmoid(q)
    return bidirectional_gla(q, q.flip(-1), q * 0.5, gates, gates.flip(1))


def _multistep_lif(q):
    return multistep_lif(q * 4.0)


ZOO_OPS = {"linear_attention": _linear_attention, "gaussian_attention": _gaussian_attention,
           "bidirectional_gla": _bidirectional_gla, "multistep_lif": _multistep_lif}


class _Call(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


@pytest.mark.parametrize("op", ZOO_OPS)
def test_each_zoo_op_converts_to_onnx_by_itself(op):
    """torch.onnx.export converts the op by itself, through the reference decomposition the kernels
    register (kernels/_dispatch.py), on a graph holding only the op (seconds, not a whole model)."""
    module = _Call(ZOO_OPS[op])
    x = torch.randn(2, 2, 8, 8, generator=torch.Generator().manual_seed(0))  # (B, H, N, d), (B, N, H, d), (T, ...)
    program = torch.export.export(module, (x,))
    assert f"zoo.{op}.default" in {str(node.target) for node in program.graph.nodes}  # the op, not a bypass
    sess = session(program, (x,))
    (got,) = run_in(sess)(x)
    expected = module(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=ONNX_ULPS * torch.finfo(torch.float32).eps
                               * expected.abs().max().item())


@pytest.mark.skipif(not triton_interpreted(), reason="exports the Triton path's op on CPU: needs TRITON_INTERPRET=1")
def test_the_triton_paths_op_converts_too():
    """On the Triton path the op also returns the statistics its backward reads; the decomposition gives
    them as zeros, which the inference graph drops: only the reference's output reaches ONNX."""
    module = _Call(lambda q: linear_attention(q, q.flip(-1), q * 0.5, variant="mala", rope_hw=(2, 4), impl="triton"))
    x = torch.randn(1, 2, 8, 16, generator=torch.Generator().manual_seed(1))
    program = torch.export.export(module, (x,))
    (node,) = [n for n in program.graph.nodes if str(n.target) == "zoo.linear_attention.default"]
    assert len(node.meta["val"]) == 7  # y and the six statistics of the Triton path
    (got,) = run_in(session(program, (x,)))(x)
    expected = linear_attention_reference(x, x.flip(-1), x * 0.5, variant="mala", rope_hw=(2, 4))
    torch.testing.assert_close(got, expected, rtol=0, atol=ONNX_ULPS * torch.finfo(torch.float32).eps
                               * expected.abs().max().item())


def test_reference_decompositions_leave_plain_aten_ops():
    """`zoo.kernels.reference_decompositions()` for ExportedProgram.run_decompositions: no zoo op is left."""
    program = torch.export.export(_Call(_linear_attention), (torch.randn(2, 2, 8, 8),))
    decomposed = program.run_decompositions(reference_decompositions())
    assert not any(str(n.target).startswith("zoo.") for n in decomposed.graph.nodes)
    ops = torch.ops.zoo
    assert set(reference_decompositions()) == {ops.linear_attention.default, ops.multistep_lif.default,
                                               ops.gaussian_attention.default, ops.bidirectional_gla.default}
