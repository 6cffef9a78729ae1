"""Find 32-bit offset products in the compiled Triton kernels of `zoo.kernels` (no GPU needed).

    python aot_compile.py record RECORDS.json          # TRITON_INTERPRET=1 (the launches the ops make)
    python int64_offsets.py RECORDS.json REPORT.json   # TRITON_INTERPRET=0

A kernel launched on a large tensor gets its strides and sizes as i32 arguments whenever
each one fits (Triton specialises an int argument as i64 only from 2^31 on), and its program
ids are i32. A product of the two, `b * stride_b` with b from `tl.program_id`, is then
computed in 32 bits and wraps once the tensor holds more than 2^31 elements (ViG at B=64,
N=50176, H=8, d=64 writes a (2, B, N, H, d) buffer of 3.3e9). The fix is to widen the program
id first (`tl.program_id(0).to(tl.int64)`), so that every such product is an i64 one.

For each kernel launched in RECORDS.json this compiles one specialisation for sm_90 (the
one whose int arguments are least often 1, so that no stride is folded into a constexpr)
and reads its Triton IR (TTIR, the kernel's integer arithmetic exactly as written, before
LLVM): a value is "from a program id" or "from an int argument" if an op computes it from
one (through arithmetic, casts, loop bounds and loop-carried values; a select's condition
does not count, it only picks between its operands). Every `arith.muli` on i32 with one
operand from a program id and the other from an int argument is reported, with its source
line. Two toy kernels below (`pid * stride` and its int64 form) show the check can fail.

REPORT.json: {"<module>:<kernel>": ["<source line>: <the TTIR op>", ...]} (empty lists: clean).
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import triton
import triton.language as tl

PID, ARG = "program id", "int argument"
TOY_KERNELS = ("_toy_offsets_int32", "_toy_offsets_int64")


@triton.jit
def _toy_offsets_int32(x_ptr, y_ptr, stride_b, BLOCK: tl.constexpr):
    """The bug: b * stride_b in 32 bits."""
    b = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    tl.store(y_ptr + b * stride_b + offs, tl.load(x_ptr + b * stride_b + offs))


@triton.jit
def _toy_offsets_int64(x_ptr, y_ptr, stride_b, BLOCK: tl.constexpr):
    """The fix: the program id widened before the product."""
    b = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    tl.store(y_ptr + b * stride_b + offs, tl.load(x_ptr + b * stride_b + offs))


# ----------------------------------------------------------------------------- reading TTIR

_VALUE = re.compile(r"%([\w.$-]+)(?:#\d+)?")
_ARG = re.compile(r"%([\w.$-]+): (i32|i64)\b")
_FOR = re.compile(r"scf\.for %([\w.$-]+) = (.*?) iter_args\((.*?)\) ->")
_FOR_NO_ITER = re.compile(r"scf\.for %([\w.$-]+) = (.*?) (?::|\{)")
_MULI = re.compile(r"arith\.muli (%\S+), (%\S+?)(?: overflow<\w+>)? : (i32|tensor<[\dx]+xi32>)")
_LOC_USE = re.compile(r"loc\((#loc\d*)\)\s*$")


def _names(text: str) -> list[str]:
    return _VALUE.findall(text)


def _source_lines(ttir: str) -> dict[str, str]:
    """#locN -> "file:line" for the TTIR's location aliases (names and call sites resolved)."""
    raw = dict(re.findall(r"^(#loc\d*) = loc\((.*)\)$", ttir, flags=re.M))
    resolved: dict[str, str] = {}

    def resolve(alias: str, depth: int = 0) -> str:
        if alias in resolved or depth > 50:
            return resolved.get(alias, "?")
        body = raw.get(alias, "")
        place = re.match(r'"([^"]+)":(\d+)', body)
        if place:
            out = f"{Path(place.group(1)).name}:{place.group(2)}"
        else:  # loc("name"(#locX)) or callsite(#locA at #locB): the first alias that has a place
            out = next((r for r in (resolve(a, depth + 1) for a in re.findall(r"#loc\d*", body)) if r != "?"), "?")
        resolved[alias] = out
        return out

    return {alias: resolve(alias) for alias in raw}


def narrow_offset_products(ttir: str) -> list[str]:
    """Each i32 multiply of a program-id value by an int-argument value, as "file:line: op".

    MLIR scopes value names by region (two loops may both define %pos_35), so every name is
    resolved through the stack of open regions to the line that defines it.
    """
    header = re.search(r"tt\.func public @\w+\((.*?)\) attributes", ttir, flags=re.S)
    if header is None:
        raise ValueError("no `tt.func public` in this TTIR")
    args = {name: f"{name}@arg" for name, _ in _ARG.findall(header.group(1))}
    taint: dict[str, set] = {value: {ARG} for value in args.values()}
    body = ttir[header.end():].splitlines()
    where = _source_lines(ttir)

    def add(value: str, marks: set) -> bool:
        have = taint.setdefault(value, set())
        if marks <= have:
            return False
        have |= marks
        return True

    changed, found = True, []
    scopes: list[dict] = []  # open regions, innermost last: name -> defining line
    while changed:  # loop-carried values: repeat until nothing new is learnt
        changed, found = False, []
        scopes[:] = [dict(args)]  # in place: the helpers below read this one list
        frames: list[dict] = []            # per open region: the values its scf.yield feeds

        def value(name: str) -> str:
            return next((s[name] for s in reversed(scopes) if name in s), f"{name}@outside")

        def of(names) -> set:
            return set().union(set(), *(taint.get(value(n), set()) for n in names))

        def define(names, marks: set, lineno: int) -> bool:
            grew = False
            for name in names:
                scopes[-1][name] = f"{name}@{lineno}"
                grew |= add(scopes[-1][name], marks)
            return grew

        for lineno, line in enumerate(body):
            code = line.split(" loc(")[0].strip()
            if code.startswith("}"):
                if not frames:  # the end of the function
                    break
                scopes.pop()
                frame = frames.pop()
                if code.endswith("{"):  # `} else {`: the same scf.if, a new region
                    scopes.append({})
                    frames.append(frame)
                continue
            if code.startswith("^bb"):  # block arguments of a reduce / scan combiner: no offsets
                define(_names(code), set(), lineno)
                continue
            lhs, _, rhs = code.partition(" = ") if re.match(r"%\S+ = ", code) else ("", "", code)
            results = [n.split(":")[0] for n in _names(lhs)]
            loop = _FOR.search(rhs) or _FOR_NO_ITER.search(rhs)
            if loop:
                iv, bounds = loop.group(1), loop.group(2)
                carried = re.findall(r"%([\w.$-]+) = (%[\w.$-]+)", loop.group(3)) if loop.re is _FOR else []
                inits = [of(_names(init)) for _, init in carried]
                bound_marks = of(_names(bounds))
                result_ids = [f"{n}@{lineno}" for n in results]
                changed |= define(results, set(), lineno)
                scopes.append({})
                changed |= define([iv], bound_marks, lineno)
                for (name, _), marks in zip(carried, inits):
                    changed |= define([name], marks, lineno)
                frames.append({"carried": [value(n) for n, _ in carried], "results": result_ids})
                continue
            if rhs.startswith("scf.yield"):
                marks = [of([n]) for n in _names(rhs)]
                frame = frames[-1] if frames else {"carried": [], "results": []}
                for i, carried_value in enumerate(frame["carried"]):
                    changed |= add(carried_value, marks[i] if i < len(marks) else set())
                for result in frame["results"]:
                    changed |= add(result, set().union(set(), *marks))
                continue
            operands = _names(rhs)
            if rhs.startswith("arith.select"):
                operands = operands[1:]  # the condition only chooses
            marks = of(operands) | ({PID} if rhs.startswith("tt.get_program_id") else set())
            mul = _MULI.search(code)
            if mul:
                a, b = (taint.get(value(_names(x)[0]), set()) for x in mul.group(1, 2))
                if (PID in a and ARG in b) or (PID in b and ARG in a):
                    loc = _LOC_USE.search(line)
                    found.append(f"{where.get(loc.group(1), '?') if loc else '?'}: {code}")
            changed |= define(results, marks, lineno)
            if code.endswith("{"):  # an op with regions (scf.if, tt.reduce, ...): its results come from yields
                scopes.append({})
                frames.append({"carried": [], "results": [f"{n}@{lineno}" for n in results]})
    return found


# ----------------------------------------------------------------------------- compiling

def _kernel_specialisations(records: list[dict]) -> dict[str, dict]:
    """One record per kernel: the one with the fewest int arguments equal to 1 (those become constexprs)."""
    chosen: dict[str, dict] = {}
    for rec in records:
        key = f"{rec['module']}:{rec['name']}"
        ones = sum(1 for v in rec["args"].values() if v == 1 and not isinstance(v, bool))
        if key not in chosen or ones < chosen[key][0]:
            chosen[key] = (ones, rec)
    return {key: rec for key, (_, rec) in chosen.items()}


def _toy_records() -> list[dict]:
    args = {"x_ptr": {"tensor": "float32", "aligned": True}, "y_ptr": {"tensor": "float32", "aligned": True},
            "stride_b": 4096, "BLOCK": 128}
    return [{"module": __name__ if __name__ != "__main__" else "int64_offsets", "name": name, "args": args,
             "options": {}} for name in TOY_KERNELS]


def _ttir(source, target, backend, options: dict) -> str:
    """The kernel's TTIR: only Triton's first stage (a fraction of a second), else a full compile."""
    try:
        from triton._C.libtriton import ir
        opts = backend.parse_options(options)
        stages: dict = {}
        backend.add_stages(stages, opts, source.language)
        context = ir.context()
        ir.load_dialects(context)
        backend.load_dialects(context)
        module = source.make_ir(target, opts, backend.get_codegen_implementation(opts), backend.get_module_map(),
                                context)
        return str(stages["ttir"](module, {}))
    except Exception:  # noqa: BLE001 - another Triton's internals: the public path, slower
        return triton.compile(source, target=target, options=options).asm["ttir"]


def report(records_path: str) -> dict[str, list[str]]:
    import importlib

    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton.compiler.compiler import make_backend

    sys.path.insert(0, str(Path(__file__).parent))
    import aot_compile  # the specialisation exactly as aot_compile builds it

    from zoo.kernels._autotune import base_jit_function
    try:
        from triton._C.libtriton import native_specialize_impl as specialize_impl
    except ImportError:
        specialize_impl = lambda backend, *a: aot_compile._specialise_fallback(*a)  # noqa: E731

    with open(records_path) as f:
        records = json.load(f)["records"]
    target = GPUTarget("cuda", 90, 32)
    backend = make_backend(target)
    chosen = _kernel_specialisations(records)
    chosen.update({f"{r['module']}:{r['name']}": r for r in _toy_records()})
    out = {}
    for key, rec in chosen.items():
        fn = base_jit_function(getattr(importlib.import_module(rec["module"]), rec["name"]))  # autotuned: the jit fn
        signature, constexprs, attrs = aot_compile._specialisation(fn, rec["args"], backend, specialize_impl)
        options = {k: v for k, v in rec["options"].items() if v is not None}
        source = ASTSource(fn, signature, constexprs=constexprs, attrs=attrs)
        out[key] = narrow_offset_products(_ttir(source, target, backend, options))
        print(f"{key}: {len(out[key])} 32-bit program-id x argument products", flush=True)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} RECORDS.json REPORT.json")
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        sys.exit("int64_offsets.py compiles the kernels: run it with TRITON_INTERPRET=0")
    result = report(sys.argv[1])
    Path(sys.argv[2]).write_text(json.dumps(result, indent=1))
