"""Every Triton kernel of every `zoo.kernels` package compiles for sm_90, as the real launches specialise it.

The CPU suite runs the kernels only under Triton's interpreter, which accepts code the GPU
compiler rejects (a tl.dot on a tile under 16, mismatched shapes, ...). This test records the
launches the public ops make, forward and backward, over their variants, flags, dtypes and head
dims (under TRITON_INTERPRET=1, without executing the kernels), then compiles each distinct
specialisation (signature, constexprs, divisibility, num_warps) ahead of time for
GPUTarget("cuda", 90, 32) with Triton's frontend, LLVM and bundled ptxas: no GPU needed.
The two steps and the recorded cases are in `aot_compile.py`. Runs with Triton 3.6 and 3.8.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HELPER = Path(__file__).with_name("aot_compile.py")


def _run(step: str, records: Path, env: dict, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HELPER), step, str(records)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def _covered(launched: set, calls: dict) -> set:
    """The launched kernels and every jit function their bodies call, transitively."""
    covered, todo = set(), list(launched)
    while todo:
        name = todo.pop()
        if name not in covered:
            covered.add(name)
            todo.extend(calls.get(name, ()))
    return covered


@pytest.mark.slow
def test_every_triton_kernel_compiles_for_sm90_as_launched(tmp_path):
    triton = pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "ZOO_KERNELS_IMPL"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")  # compile for real, leave no cache behind
    records = tmp_path / "launches.json"

    recorded = _run("record", records, {**env, "TRITON_INTERPRET": "1"}, timeout=300)
    assert recorded.returncode == 0, recorded.stdout[-2000:] + recorded.stderr[-6000:]
    data = json.loads(records.read_text())

    # No jit function in kernels/*/triton_*.py escapes: each is launched by a recorded case or
    # called from a launched kernel (compiled with it). A new kernel needs a case in aot_compile.py.
    launched = {f"{r['module']}:{r['name']}" for r in data["records"]}
    packages = {name.split(":")[0].split(".")[2] for name in data["jit_functions"]}
    assert packages >= {"linear_attention", "gated_linear_attention", "gaussian_attention", "lif"}, packages
    missing = sorted(set(data["jit_functions"]) - _covered(launched, data["jit_functions"]))
    assert not missing, ("jit functions neither launched by a case in aot_compile.py nor called by a launched "
                         f"kernel: {missing}")

    compiled = _run("compile", records, {**env, "TRITON_INTERPRET": "0"}, timeout=1200)
    print(compiled.stdout)
    lines = compiled.stdout.splitlines()
    summary = lines[-1] if lines else ""
    failed = [line for line in lines if line.startswith("FAILED")]
    assert compiled.returncode == 0, "\n".join([summary, *failed[:40], compiled.stderr[-20000:]])
    assert summary.startswith("compiled ") and "failed" not in summary, compiled.stdout[-3000:]
    # No specialisation spills registers: every launched config, and every candidate of an
    # autotuned kernel (aot_compile records each), stays in registers on sm_90 (issue 20).
    compiled_lines = [line for line in lines if line.startswith("ok ")]
    spilling = [line for line in compiled_lines if re.search(r" spill=(?!0/0 )", line)]
    assert not spilling, "specialisations that spill registers on sm_90:\n" + "\n".join(spilling)
    if _version(triton.__version__) >= (3, 8):  # ptxas's log comes back (knobs.nvidia.dump_ptxas_log)
        # registers and spill bytes both, so that the no-spill check above read a count on every line
        unreported = [line for line in compiled_lines if not re.match(r"ok +[\d.]+s regs=\d+ spill=\d+/\d+ ", line)]
        assert not unreported, "ptxas reported no registers or spills for:\n" + "\n".join(unreported[:20])


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])
