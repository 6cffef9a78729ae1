"""Autotuning that CPU tests and the sm_90 compile test can follow.

`autotune(configs, key)` is `triton.autotune` with one addition: under Triton's interpreter
(the CPU suite) only the first config runs, since the interpreter cannot time a kernel and
every config computes the same result. On a GPU Triton times every config once per key and
keeps the fastest, as usual.

The candidate lists are the recorded part of the choice: tests/kernels/test_compile_sm90.py
compiles every config of every autotuned kernel, as the recorded launches specialise it, for
sm_90 and fails if one spills registers. So whatever the timing picks on a Hopper GPU, it
does not spill. Put the config that suits the CPU tests best (smallest tiles) first.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from ._dispatch import triton_interpreted

__all__ = ["autotune", "tuned_configs", "base_jit_function"]


def _first_when_interpreted(prune: Callable | None):
    def early_config_prune(configs, named_args, **kwargs):
        if prune is not None:
            configs = prune(configs, named_args, **kwargs)
        return list(configs)[:1] if triton_interpreted() else configs
    return early_config_prune


def _short_bench(kernel_call, quantiles):
    """Triton's do_bench with a 5 ms warm-up and 25 ms of repeats (its defaults: 25 and 100): a new
    key costs about 30 ms per candidate, which keeps a benchmark sweep over many shapes in budget."""
    import triton.testing

    return triton.testing.do_bench(kernel_call, warmup=5, rep=25, quantiles=quantiles)


def autotune(configs: Sequence, key: Sequence[str], prune: Callable | None = None, **kwargs):
    """triton.autotune(configs, key) that runs only the first config (after `prune`, Triton's
    early_config_prune(configs, named_args, **kwargs)) under the interpreter and times each
    candidate briefly (`_short_bench`). Other keyword arguments (reset_to_zero, restore_value,
    ...) go to triton.autotune."""
    import triton

    if not configs:
        raise ValueError("autotune needs at least one triton.Config")
    kwargs.setdefault("do_bench", _short_bench)
    return triton.autotune(configs=list(configs), key=list(key),
                           prune_configs_by={"early_config_prune": _first_when_interpreted(prune)}, **kwargs)


def tuned_configs(kernel) -> list | None:
    """The candidate configs of an autotuned kernel (through any heuristics wrapper), None otherwise."""
    from triton.runtime.autotuner import Autotuner

    while not isinstance(kernel, Autotuner) and hasattr(kernel, "fn"):
        kernel = kernel.fn
    return list(kernel.configs) if isinstance(kernel, Autotuner) else None


def base_jit_function(kernel):
    """The jit function (JITFunction or InterpretedFunction) inside autotune / heuristics wrappers."""
    from triton.runtime.autotuner import Autotuner, Heuristics

    while isinstance(kernel, (Autotuner, Heuristics)):
        kernel = kernel.fn
    return kernel
