"""One dispatch for every `zoo.kernels` op: which path runs, and the input checks the ops share.

Path. `impl` ('auto' | 'triton' | 'reference') is the caller's argument, else the environment
variable ZOO_KERNELS_IMPL, else 'auto'. 'auto' runs the fused Triton kernels on CUDA tensors they
support and the plain-PyTorch reference everywhere else. A forced 'triton' on CPU tensors runs
only under Triton's interpreter (TRITON_INTERPRET=1, read here exactly as Triton reads it); Triton
fixes interpreted vs compiled when a kernel is decorated, so the variable must be in the
environment before the first Triton path runs: the CPU test command sets it (`make test`).

Checks. Every op validates its inputs before any work: tensors of a floating dtype (an integer
tensor would otherwise give a silently truncated result), on one device, with the sizes the op's
definition needs. Each error is a ValueError that names the op, the argument, what was given and
what is expected.

Decompositions. Each forward op registers its plain-PyTorch reference as its decomposition
(`register_reference_decomposition`): torch.onnx's exporter decomposes every op it cannot
translate through torch._decomp's table, so a model that calls the zoo's ops converts to ONNX
as ordinary ONNX operators, and `reference_decompositions()` gives the same table to
`ExportedProgram.run_decompositions`. torch.compile and torch.export's default decompositions
never read that table: they keep the op (and its Triton path). Inductor runs such an op as an
extern call; where the environment sets CI (GitHub Actions does) it refuses an implicit fallback
for an op that has a decomposition, so each op is put on Inductor's FALLBACK_ALLOW_LIST as soon
as Inductor is imported (`_allow_inductor_fallbacks`): the fallback is intended.

Nothing here imports Triton: `import zoo` stays cheap and works without it.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable, Sequence

import torch

__all__ = [
    "IMPLS", "ENV_IMPL", "ENV_INTERPRET", "FLOAT_DTYPES", "TRITON_DTYPES",
    "requested_impl", "resolve_impl", "triton_interpreted", "triton_available", "triton_unsupported",
    "check_tensor", "check_same_device", "check_positive", "shape_error", "reference_grads", "interpreted_kernels",
    "register_reference_decomposition", "reference_decompositions",
]

_REFERENCE_DECOMPOSITIONS: dict[torch._ops.OpOverload, Callable[..., object]] = {}

IMPLS = ("auto", "triton", "reference")
ENV_IMPL = "ZOO_KERNELS_IMPL"
ENV_INTERPRET = "TRITON_INTERPRET"
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_TRUE = ("1", "true", "on", "yes", "y")  # Triton's own reading of a boolean variable (getenv_bool)


def _names(dtypes: Iterable[torch.dtype]) -> str:
    return ", ".join(str(t).removeprefix("torch.") for t in dtypes)


def triton_interpreted() -> bool:
    """Whether Triton decorates kernels for its CPU interpreter (TRITON_INTERPRET, as Triton reads it)."""
    return os.environ.get(ENV_INTERPRET, "0").strip().lower() in _TRUE


def triton_available() -> bool:
    """Whether Triton is installed (found without importing it)."""
    return importlib.util.find_spec("triton") is not None


def requested_impl(op: str, impl: str | None) -> str:
    """The caller's choice: the argument, else ZOO_KERNELS_IMPL for None or 'auto', else 'auto'."""
    if impl is not None and impl not in IMPLS:
        raise ValueError(f"{op}: impl must be one of {IMPLS}, got {impl!r}")
    if impl in (None, "auto"):
        impl = os.environ.get(ENV_IMPL, "") or "auto"
        if impl not in IMPLS:
            raise ValueError(f"{op}: environment variable {ENV_IMPL} must be one of {IMPLS}, got {impl!r}")
    return impl


def triton_unsupported(device: torch.device, dtypes: Iterable[torch.dtype] = (),
                       triton_dtypes: tuple[torch.dtype, ...] = TRITON_DTYPES) -> str | None:
    """Why the Triton path cannot take tensors on `device` with `dtypes` ("needs ..."), or None."""
    bad = sorted({t for t in dtypes if t not in triton_dtypes}, key=str)
    if bad:
        return f"dtype in ({_names(triton_dtypes)}), got {_names(bad)}"
    if device.type != "cuda" and not triton_interpreted():
        return (f"CUDA tensors, got device {device} (CPU tensors run it only under Triton's interpreter: "
                f"{ENV_INTERPRET}=1 in the environment before the first call)")
    if not triton_available():
        return "Triton installed (pip install triton)"
    return None


def resolve_impl(op: str, impl: str | None, device: torch.device, unsupported: str | None = None) -> str:
    """'triton' or 'reference' for the op's inputs on `device`.

    `impl`: the caller's choice (see `requested_impl`). `unsupported`: why the Triton path cannot
    take these inputs (from `triton_unsupported`, plus the op's own limits), or None. 'auto'
    takes Triton only for CUDA inputs it supports; a forced 'triton' it cannot run is an error.
    """
    impl = requested_impl(op, impl)
    if impl == "reference":
        return "reference"
    if impl == "auto":
        return "triton" if device.type == "cuda" and unsupported is None else "reference"
    if unsupported is not None:
        raise ValueError(f"{op}: the Triton path (impl='triton') needs {unsupported}; use impl='reference' or "
                         f"'auto' (or unset {ENV_IMPL})")
    return "triton"


def check_tensor(op: str, name: str, t: object, shape: str, ndim: int | None = None,
                 dtypes: tuple[torch.dtype, ...] = FLOAT_DTYPES) -> None:
    """t is a tensor of one of `dtypes` (and of `ndim` dims if given); `shape` names its layout."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{op}: {name} must be a torch.Tensor {shape}, got {type(t).__name__}")
    if t.dtype not in dtypes:
        hint = "; cast it first (e.g. .float())" if not t.is_floating_point() else ""
        raise ValueError(f"{op}: {name} must have a floating dtype ({_names(dtypes)}), got {t.dtype}{hint}")
    if ndim is not None and t.ndim != ndim:
        raise ValueError(f"{op}: expected {name} of shape {shape}, got {t.ndim}-D shape {tuple(t.shape)}")


def check_same_device(op: str, **tensors: torch.Tensor) -> None:
    devices = {name: t.device for name, t in tensors.items()}
    if len(set(devices.values())) > 1:
        listed = ", ".join(f"{name} on {device}" for name, device in devices.items())
        raise ValueError(f"{op}: all inputs must be on one device, got {listed}")


def check_positive(op: str, what: str, value: int, shape: str) -> None:
    """A size the op's definition needs (a head dim, a token count) is at least 1."""
    if value < 1:
        raise ValueError(f"{op}: {what} must be >= 1, got {value} (shape {shape})")


def shape_error(op: str, expected: str, **tensors: torch.Tensor) -> ValueError:
    """The error for inputs whose shapes do not fit together: `expected`, then every input's shape."""
    got = ", ".join(f"{name} {tuple(t.shape)}" for name, t in tensors.items())
    return ValueError(f"{op}: expected {expected}; got {got}")


def runs_reference_eagerly(path: str) -> bool:
    """True where the reference path can run as plain PyTorch, outside the op.

    In eager mode the op adds only cost on that path: a wrapper per call and a backward that
    recomputes the forward. Whatever traces or counts the computation (torch.compile, torch.export,
    FakeTensorMode, FlopCounterMode and other dispatch modes) sees the op instead.
    """
    return (path == "reference" and not torch.compiler.is_compiling()
            and torch.utils._python_dispatch._get_current_dispatch_mode() is None)


def reference_grads(fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor],
                    grad_out: torch.Tensor) -> list[torch.Tensor]:
    """The gradients of `fn(*inputs)` (a reference) for `grad_out`, by autograd through it.

    The reference path's backward: the forward is recomputed with autograd on and differentiated,
    so its gradients are exactly those of autograd through the reference. Each gradient is
    contiguous (zeros for an input the output does not depend on).
    """
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_() for t in inputs]
        grads = torch.autograd.grad(fn(*leaves), leaves, grad_out, allow_unused=True)
    return [torch.zeros(t.shape, dtype=t.dtype, device=t.device) if g is None else g.contiguous()
            for t, g in zip(leaves, grads)]


def register_reference_decomposition(op: torch._ops.OpOverload, reference: Callable[..., torch.Tensor],
                                     fake: Callable[..., object]) -> None:
    """Register `reference` (called with the op's own arguments) as the decomposition of `op`.

    `fake` is the op's fake kernel: it gives the outputs the op returns for these arguments. The
    first (or only) output is the reference's result in that dtype; the Triton path's extra
    outputs (statistics only its backward reads) come as zeros of their shapes, which an
    inference graph never uses and drops.
    """
    def decomposition(*args: object) -> object:
        like = fake(*args)
        if isinstance(like, torch.Tensor):
            return reference(*args).to(like.dtype)
        return [reference(*args).to(like[0].dtype), *(t.new_zeros(t.shape) for t in like[1:])]

    import torch._decomp  # the table torch.onnx reads (there is no public registration for it)
    torch._decomp.register_decomposition(op)(decomposition)
    _REFERENCE_DECOMPOSITIONS[op] = decomposition
    _allow_inductor_fallbacks_on_import()


def _allow_inductor_fallbacks(lowering: object) -> None:
    """Puts every registered zoo op on Inductor's FALLBACK_ALLOW_LIST: Inductor keeps it as an extern call
    (its Triton kernel or reference), as it does anyway where CI is unset. Without this, Inductor with the
    CI variable set raises "make_fallback(zoo.<op>): a decomposition exists" for an op that has no
    lowering and a registered decomposition (the one torch.onnx needs)."""
    lowering.FALLBACK_ALLOW_LIST.update(op.name().split(".")[0] for op in _REFERENCE_DECOMPOSITIONS)


class _InductorLoweringHook(importlib.abc.MetaPathFinder):
    """Runs `_allow_inductor_fallbacks` once torch._inductor.lowering is imported, so that `import zoo`
    never imports Inductor (about 2 s) and `torch._dynamo.reset()` cannot undo it."""

    NAME = "torch._inductor.lowering"

    def find_spec(self, fullname: str, path: object, target: object = None) -> object:
        if fullname != self.NAME:
            return None
        others = [f for f in sys.meta_path if f is not self]
        spec = next((s for f in others if (s := f.find_spec(fullname, path, target)) is not None), None)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_allow(module: object) -> None:
            exec_module(module)
            _allow_inductor_fallbacks(module)

        spec.loader.exec_module = exec_then_allow
        return spec


def _allow_inductor_fallbacks_on_import() -> None:
    lowering = sys.modules.get(_InductorLoweringHook.NAME)
    if lowering is not None:
        _allow_inductor_fallbacks(lowering)
    elif not any(isinstance(f, _InductorLoweringHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _InductorLoweringHook())


def reference_decompositions() -> dict[torch._ops.OpOverload, Callable[..., object]]:
    """Each registered zoo op -> its reference decomposition, for `ExportedProgram.run_decompositions`
    (an exported program then holds plain ATen ops only; packages not imported yet are absent)."""
    return dict(_REFERENCE_DECOMPOSITIONS)


def interpreted_kernels() -> list[str]:
    """The `zoo.kernels` Triton kernels already decorated for the interpreter (loaded modules only).

    A GPU test uses this to fail when it would measure or test the interpreter instead of the GPU.
    """
    import sys

    found = []
    for name, module in list(sys.modules.items()):
        if not (name.startswith("zoo.kernels.") and name.rsplit(".", 1)[-1].startswith("triton_")):
            continue
        for attr, obj in vars(module).items():
            if type(obj).__name__ == "InterpretedFunction":
                found.append(f"{name}.{attr}")
    return sorted(found)
