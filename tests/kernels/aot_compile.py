"""Compile every Triton kernel of `zoo.kernels` for sm_90 as the real launches specialise it, without a GPU.

Two steps, each in its own process (TRITON_INTERPRET is read when `@triton.jit` runs,
so one process cannot hold both kinds of kernel object):

    python aot_compile.py record RECORDS.json    # TRITON_INTERPRET=1
    python aot_compile.py compile RECORDS.json   # TRITON_INTERPRET=0

`record` patches the interpreter's launch (`InterpretedFunction.run`, what `kernel[grid](...)`
calls) to write down each launch instead of running it: the kernel's module and name, every
argument bound to its parameter name (a tensor as its dtype and whether its data pointer is
16-byte aligned; an int, float, bool, str or None as its value) and the launch options
(num_warps, num_stages, ...). It then runs each public op forward and backward on small CPU
tensors over the variants, flags, dtypes and head dims in CASES. Kernels are not executed:
launch arguments depend on shapes, strides and dtypes only, and the interpreter cannot run
every dtype (it has no bfloat16 store). The JSON also lists every `@triton.jit` function
defined in `kernels/*/triton_*.py` with the jit functions its body calls, so that the test can
check that each one is launched or compiled as part of a launched kernel.

`compile` rebuilds from each record the specialisation `JITFunction.run` would build (the same
`native_specialize_impl` Triton's launcher uses: ints equal to 1 become constexprs, ints and
pointers divisible by 16 get `tt.divisibility`), deduplicates, and calls `triton.compile` on an
`ASTSource` for `GPUTarget("cuda", 90, 32)` with the recorded options: Triton's frontend, its
bundled LLVM and ptxas, no device. One line per compiled specialisation, then "compiled N
kernels"; exit status 1, with each failing kernel and its compiler error, if any fails.
Compiles in min(ZOO_AOT_JOBS (default 8), CPU count) forked processes.
Works with Triton 3.6 and 3.8 (ASTSource(fn, signature, constexprs, attrs), make_backend,
GPUTarget and native_specialize_impl have the same form in both).
"""
from __future__ import annotations

import os
import sys

TRITON_TENSOR_TYPES = {  # torch dtype name -> Triton pointer element type (fallback specialisation only)
    "float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64", "int8": "i8", "int16": "i16",
    "int32": "i32", "int64": "i64", "uint8": "u8", "bool": "i1",
}


# ----------------------------------------------------------------------------- record (TRITON_INTERPRET=1)

def _cases():
    """(label, thunk) pairs: each thunk runs one public op forward and backward on the Triton path."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(0)

    def randn(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=gen).to(dtype)

    def backward(out, inputs):
        leaves = [t for t in inputs if t.requires_grad]
        torch.autograd.grad(out, leaves, torch.ones_like(out))

    cases = []

    # linear attention: every (variant, RoPE) flag combination in fp32 d=16 (token-minor views, the
    # channels-first models' layout) and bf16 d=64 (contiguous), the head-dim tests' mixes, fp16.
    # chunks=2: several chunks as on a GPU (on CPU `_split` would pick 1); block_n and num_warps stay
    # the defaults the models launch with (None: the tile by dtype and d, every autotune candidate
    # recorded).
    def linear_attention_case(variant, rope_hw, d, dtype, layout):
        def run():
            import zoo.kernels.linear_attention  # noqa: F401 - defines torch.ops.zoo.linear_attention
            b, heads, n = 1, 2, 130
            if layout == "token_minor":
                qkv = [randn(b, heads * d, n, dtype=dtype).view(b, heads, d, n).transpose(-1, -2) for _ in range(3)]
            else:
                qkv = [randn(b, heads, n, d, dtype=dtype) for _ in range(3)]
            qkv = [t.requires_grad_() for t in qkv]
            hw = [10, 13] if rope_hw else None
            y = torch.ops.zoo.linear_attention(*qkv, variant, hw, 1e-6, "triton", None, 2, None)[0]
            backward(y, qkv)
        return f"linear_attention {variant} rope={rope_hw} d={d} {dtype} {layout}", run

    flag_combos = [("rala", True), ("rala", False), ("mala", True), ("mala", False), ("inline", False)]
    for variant, rope in flag_combos:
        cases.append(linear_attention_case(variant, rope, 16, torch.float32, "token_minor"))
        cases.append(linear_attention_case(variant, rope, 64, torch.bfloat16, "contiguous"))
    for variant, rope, d, dtype in [("rala", True, 32, torch.float32), ("inline", False, 64, torch.float32),
                                    ("inline", False, 32, torch.bfloat16), ("rala", True, 16, torch.float16),
                                    ("mala", True, 32, torch.float16), ("rala", True, 64, torch.float32),
                                    ("mala", True, 64, torch.float32)]:
        cases.append(linear_attention_case(variant, rope, d, dtype, "token_minor"))

    # bidirectional gated linear attention: (dk, dv) of ViG-H and plain ViG, fp32 contiguous and as
    # views of a fused projection (the model's layout), bf16 / fp16 q, k, v with fp32 or low-precision gates.
    def gla_case(dk, dv, qkv_dtype, gate_dtype, fused, n=37):
        def run():
            from zoo.kernels.gated_linear_attention import bidirectional_gla
            b, h = 1, 2
            if fused:
                qkv = randn(b, n, h * (2 * dk + dv), dtype=qkv_dtype)
                gates = (F.logsigmoid(randn(b, n, 2 * h * dk)) / 16).to(gate_dtype)
                q, k, v = (t.unflatten(-1, (h, -1)) for t in qkv.split([h * dk, h * dk, h * dv], -1))
                a_f, a_b = (t.unflatten(-1, (h, dk)) for t in gates.chunk(2, -1))
            else:
                q, k = randn(b, n, h, dk, dtype=qkv_dtype), randn(b, n, h, dk, dtype=qkv_dtype)
                v = randn(b, n, h, dv, dtype=qkv_dtype)
                a_f, a_b = ((F.logsigmoid(randn(b, n, h, dk)) / 16).to(gate_dtype) for _ in range(2))
            inputs = [t.requires_grad_() for t in (q, k, v, a_f, a_b)]
            backward(bidirectional_gla(*inputs, impl="triton"), inputs)
        return f"bidirectional_gla dk={dk} dv={dv} {qkv_dtype} gates {gate_dtype} fused={fused} n={n}", run

    for dk, dv, qkv_dtype, gate_dtype, fused in [
            (16, 32, torch.float32, torch.float32, False), (32, 64, torch.float32, torch.float32, True),
            (16, 32, torch.bfloat16, torch.float32, False), (32, 64, torch.bfloat16, torch.bfloat16, True),
            (64, 64, torch.float16, torch.float16, False)]:
        cases.append(gla_case(dk, dv, qkv_dtype, gate_dtype, fused))
    # several 64-token chunks (the chunk count is then no constexpr 1): the scans and carries run
    cases.append(gla_case(32, 64, torch.bfloat16, torch.bfloat16, True, n=150))
    cases.append(gla_case(32, 64, torch.float32, torch.float32, True, n=150))

    # Gaussian attention (SOFT): the kernel tests' shapes (b, h, n, m, d, e) in fp32, and low precision.
    def gaussian_case(shape, dtype):
        def run():
            from zoo.kernels.gaussian_attention import gaussian_attention
            b, h, n, m, d, e = shape
            inputs = [randn(b, h, n, d, dtype=dtype), randn(b, h, m, d, dtype=dtype), randn(b, h, m, m),
                      randn(b, h, n, e, dtype=dtype)]
            inputs = [t.requires_grad_() for t in inputs]
            backward(gaussian_attention(*inputs, impl="triton"), inputs)
        return f"gaussian_attention {shape} {dtype}", run

    for shape, dtype in [((1, 2, 70, 20, 16, 16), torch.float32), ((2, 1, 150, 9, 32, 32), torch.float32),
                         ((1, 1, 40, 70, 32, 16), torch.float32), ((1, 2, 70, 49, 64, 64), torch.bfloat16),
                         ((1, 2, 70, 20, 32, 32), torch.float16)]:
        cases.append(gaussian_case(shape, dtype))

    # multi-step LIF: T is a constexpr (the loop is unrolled); the training path (forward, then the
    # backward, which recomputes the membrane, with and without detached reset) and the inference
    # path, for every supported dtype.
    def lif_case(t_steps, dtype, grad, detach_reset=True):
        def run():
            from zoo.kernels.lif import multistep_lif
            x = randn(t_steps, 2, 700, dtype=dtype)
            if grad:
                x.requires_grad_()
                backward(multistep_lif(x, detach_reset=detach_reset, impl="triton"), [x])
            else:
                with torch.no_grad():
                    multistep_lif(x, impl="triton")
        return f"multistep_lif T={t_steps} {dtype} grad={grad} detach_reset={detach_reset}", run

    for t_steps, dtype, grad, detach in [(4, torch.float32, True, True), (4, torch.float32, True, False),
                                         (4, torch.float32, False, True), (1, torch.float32, True, True),
                                         (4, torch.float64, True, True), (4, torch.float64, True, False),
                                         (2, torch.float16, True, True), (2, torch.bfloat16, True, True),
                                         (3, torch.float32, True, True), (8, torch.float32, True, False),
                                         (16, torch.float64, True, False)]:  # padded tile; smaller blocks
        cases.append(lif_case(t_steps, dtype, grad, detach))
    return cases


def _describe(value):
    import torch
    if isinstance(value, torch.Tensor):
        return {"tensor": str(value.dtype).removeprefix("torch."), "aligned": value.data_ptr() % 16 == 0}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot record a kernel argument of type {type(value).__name__}: {value!r}")


def _jit_functions():
    """{"module:name": [called "module:name", ...]} for every jit function defined in kernels/*/triton_*.py."""
    import ast
    import inspect
    import textwrap

    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    from zoo.kernels._autotune import base_jit_function

    kinds = (InterpretedFunction, JITFunction)
    found = {}
    for module in _kernel_modules():
        for name, obj in vars(module).items():
            obj = base_jit_function(obj)
            if not isinstance(obj, kinds) or obj.fn.__module__ != module.__name__:
                continue
            callees = set()
            tree = ast.parse(textwrap.dedent(inspect.getsource(obj.fn)))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                target = None
                if isinstance(node.func, ast.Name):
                    target = obj.fn.__globals__.get(node.func.id)
                elif isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
                    target = getattr(obj.fn.__globals__.get(node.func.value.id), node.func.attr, None)
                target = base_jit_function(target)
                if isinstance(target, kinds) and target.fn.__module__.startswith("zoo.kernels."):
                    callees.add(f"{target.fn.__module__}:{target.fn.__name__}")
            found[f"{module.__name__}:{name}"] = sorted(callees)
    return found


def _kernel_modules() -> list:
    """The imported kernel modules, kernels/*/triton_*.py."""
    import importlib
    from pathlib import Path

    import zoo.kernels

    files = sorted(Path(zoo.kernels.__file__).parent.glob("*/triton_*.py"))
    if not files:
        raise RuntimeError(f"no kernels/*/triton_*.py next to {zoo.kernels.__file__}")
    return [importlib.import_module(f"zoo.kernels.{path.parent.name}.{path.stem}") for path in files]


def _autotuned_configs() -> dict:
    """{id(interpreted jit function): [each candidate config's launch kwargs]} for every autotuned
    kernel in kernels/*/triton_*.py."""
    from zoo.kernels._autotune import base_jit_function, tuned_configs

    found = {}
    for module in _kernel_modules():
        for obj in vars(module).values():
            configs = tuned_configs(obj)
            if configs:
                found[id(base_jit_function(obj))] = [c.all_kwargs() for c in configs]
    return found


def record(out_path: str) -> None:
    import inspect
    import json

    import torch
    import triton
    from triton.runtime.interpreter import InterpretedFunction

    records, order = {}, []
    configs = _autotuned_configs()

    def run(self, *args, grid, warmup, **kwargs):
        # an autotuned kernel is launched here with its first config (the interpreter's choice):
        # record it with each candidate config instead, as a GPU may pick any of them
        for config in configs.get(id(self), [{}]):
            launch = {**kwargs, **{k: v for k, v in config.items() if v is not None}}
            params = {k: v for k, v in launch.items() if k in self.arg_names}
            options = {k: v for k, v in launch.items() if k not in self.arg_names}
            bound = inspect.signature(self.fn).bind(*args, **params)
            bound.apply_defaults()
            rec = {"module": self.fn.__module__, "name": self.fn.__name__,
                   "args": {k: _describe(v) for k, v in bound.arguments.items()}, "options": options}
            key = json.dumps(rec, sort_keys=True)
            if key not in records:
                records[key] = rec
                order.append(key)
        return None  # record only: nothing the host code reads back depends on the kernels' results

    InterpretedFunction.run = run
    torch.manual_seed(0)
    for label, case in _cases():
        try:
            case()
        except Exception as exc:
            raise RuntimeError(f"recording case '{label}' failed: {exc!r}") from exc
    with open(out_path, "w") as f:
        json.dump({"triton": triton.__version__, "records": [records[k] for k in order],
                   "jit_functions": _jit_functions()}, f, indent=1)
    print(f"recorded {len(order)} launches")


# ----------------------------------------------------------------------------- compile (TRITON_INTERPRET=0)

class _FakeTensor:
    """What Triton's specialiser reads from a tensor argument: its dtype and data pointer."""

    def __init__(self, dtype, aligned: bool):
        self.dtype, self._ptr = dtype, 1 << 20 if aligned else (1 << 20) + 4

    def data_ptr(self):
        return self._ptr


def _specialise_fallback(value, is_const, specialize, align):
    """Without `native_specialize_impl`: the types only (no value-1 constexprs, no divisibility)."""
    if value is None:
        return ("constexpr", None)
    if isinstance(value, bool):
        return ("u1", None)
    if isinstance(value, int):
        return ("i32" if -2 ** 31 <= value < 2 ** 31 else "i64", None)
    if isinstance(value, float):
        return ("fp32", None)
    if isinstance(value, _FakeTensor):
        return (("*k" if is_const else "*") + TRITON_TENSOR_TYPES[str(value.dtype).removeprefix("torch.")], None)
    raise TypeError(f"no Triton type for {value!r}")


def _specialisation(fn, args: dict, backend, specialize_impl):
    """(signature, constexprs, attrs) as JITFunction.run builds them for these arguments."""
    import torch

    signature, constexprs, attrs = {}, {}, {}
    for i, kp in enumerate(fn.params):
        raw = args[kp.name]
        value = _FakeTensor(getattr(torch, raw["tensor"]), raw["aligned"]) if isinstance(raw, dict) else raw
        if kp.is_constexpr:
            spec = ("constexpr", value)
        else:
            spec = specialize_impl(backend, value, kp.is_const, not kp.do_not_specialize,
                                   not kp.do_not_specialize_on_alignment)
            ann = kp.annotation_type
            if ann and isinstance(ann, str):
                spec = (ann, None) if ann == "u1" or ann[:2] in ("fp", "bf") else (ann,) + tuple(spec[1:])
        signature[kp.name] = spec[0]
        if spec[0] == "constexpr":
            constexprs[(i,)] = spec[1]
        elif isinstance(spec[1], str) and spec[1]:
            attrs[(i,)] = backend.parse_attr(spec[1])
    return signature, constexprs, attrs


def _describe_spec(name, signature, constexprs, attrs, options, params):
    parts = []
    for i, kp in enumerate(params):
        if (i,) in constexprs:
            parts.append(f"{kp.name}={constexprs[(i,)]!r}")
        else:
            div = ":16" if any(a[0] == "tt.divisibility" for a in attrs.get((i,), [])) else ""
            parts.append(f"{kp.name}:{signature[kp.name]}{div}")
    opts = " ".join(f"{k}={v}" for k, v in sorted(options.items()))
    return f"{name}({', '.join(parts)}) {opts}".rstrip()


def compile_records(records_path: str) -> int:
    import importlib
    import json
    import time

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler.compiler import make_backend
    from triton.runtime.jit import JITFunction

    from zoo.kernels._autotune import base_jit_function
    try:
        from triton._C.libtriton import native_specialize_impl as specialize_impl
    except ImportError:  # older / newer Triton: types only
        specialize_impl = lambda backend, *a: _specialise_fallback(*a)  # noqa: E731

    with open(records_path) as f:
        records = json.load(f)["records"]
    target = GPUTarget("cuda", 90, 32)
    backend = make_backend(target)
    jobs = {}
    for rec in records:
        module = importlib.import_module(rec["module"])
        fn = base_jit_function(getattr(module, rec["name"]))
        if not isinstance(fn, JITFunction):
            raise TypeError(f"{rec['module']}.{rec['name']} is a {type(fn).__name__}, not a JITFunction: "
                            "run the compile step with TRITON_INTERPRET=0")
        signature, constexprs, attrs = _specialisation(fn, rec["args"], backend, specialize_impl)
        options = {k: v for k, v in rec["options"].items() if v is not None}
        key = (rec["module"], rec["name"], json.dumps(signature), repr(sorted(constexprs.items())),
               repr(sorted(attrs.items())), json.dumps(options, sort_keys=True))
        jobs.setdefault(key, (fn, signature, constexprs, attrs, options))

    jobs = list(jobs.items())
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = max(1, min(int(os.environ.get("ZOO_AOT_JOBS", "8")), cpus, len(jobs)))
    print(f"triton {triton.__version__}: {len(records)} recorded launches, {len(jobs)} specialisations, "
          f"{workers} compile process(es)", flush=True)
    _JOBS[:] = [(fn, signature, constexprs, attrs, options, target,
                 _describe_spec(f"{key[0]}.{key[1]}", signature, constexprs, attrs, options, fn.params))
                for key, (fn, signature, constexprs, attrs, options) in jobs]
    start = time.perf_counter()
    if workers == 1:
        results = map(_compile_job, range(len(_JOBS)))
    else:  # forked workers inherit _JOBS (the JITFunctions are not picklable)
        import concurrent.futures
        import multiprocessing
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
        results = pool.map(_compile_job, range(len(_JOBS)))
    failures = {}  # (kernel, the error's last line) -> (the error, [failing specialisations])
    for line, seconds, error in results:
        if error is None:
            print(f"ok {seconds:5.1f}s {line}", flush=True)
        else:
            print(f"FAILED {line}", flush=True)
            kernel = line.split("(", 1)[0]
            failures.setdefault((kernel, error.strip().splitlines()[-1]), (error, []))[1].append(line)
    if workers > 1:
        pool.shutdown()
    n_failed = sum(len(lines) for _, lines in failures.values())
    for (kernel, _), (error, lines) in failures.items():  # each distinct error once
        print(f"\n{kernel} failed to compile for sm_90 (triton {triton.__version__}) in {len(lines)} "
              f"specialisation(s), e.g.\n  {lines[0]}\n{error[-2500:]}", file=sys.stderr)
    compiled = len(_JOBS) - n_failed
    print(f"compiled {compiled} kernels in {time.perf_counter() - start:.1f}s"
          + (f"; {n_failed} failed" if n_failed else ""), flush=True)
    return 1 if n_failed else 0


_JOBS: list = []


def _resources(ptxas_log: str) -> str:
    """'regs=R spill=S/L' (registers per thread, spill store / load bytes) from ptxas's -v log, or ''."""
    import re

    regs = re.findall(r"Used (\d+) registers", ptxas_log)
    spills = re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", ptxas_log)
    if not regs:
        return ""
    spill = f" spill={spills[-1][0]}/{spills[-1][1]}" if spills else ""
    return f"regs={regs[-1]}{spill} "


def _compile_job(index: int):
    """(description, seconds, None or the compiler error) for _JOBS[index]; the description starts
    with the registers and spills ptxas reports for the kernel (sm_90, no GPU needed)."""
    import contextlib
    import io
    import time
    import traceback

    import triton
    from triton import knobs
    from triton.compiler import ASTSource

    fn, signature, constexprs, attrs, options, target, line = _JOBS[index]
    t0 = time.perf_counter()
    log = io.StringIO()
    try:
        knobs.nvidia.dump_ptxas_log = True  # Triton prints ptxas's -v log (registers, spills)
        with contextlib.redirect_stdout(log):
            triton.compile(ASTSource(fn, signature, constexprs=constexprs, attrs=attrs), target=target,
                           options=options)
    except Exception as exc:  # noqa: BLE001 - every compiler error is a finding
        return line, time.perf_counter() - t0, "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return _resources(log.getvalue()) + line, time.perf_counter() - t0, None


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("record", "compile"):
        sys.exit(f"usage: {sys.argv[0]} record|compile RECORDS.json")
    # before the first `import triton` and before any @triton.jit runs
    os.environ["TRITON_INTERPRET"] = "1" if sys.argv[1] == "record" else "0"
    if sys.argv[1] == "record":
        record(sys.argv[2])
    else:
        sys.exit(compile_records(sys.argv[2]))
