"""Model-level benchmarks (the library behind `zoo-bench`).

    from zoo.bench import Settings, run
    run(["ravlt_t", "mavit_t"], img_sizes=[224, 512], batch_sizes=[1], settings=Settings(), out="bench/ravlt")

- `runner`: which rows (zoo models on each kernel path, timm peers, official code), measuring one
  row (in this process or, with `isolate`, in its own), the CSV / JSON table;
- `timing`: torch.utils.benchmark on CPU, CUDA events on a GPU; peak memory;
- `official`: the official implementations, built from local checkouts of their repositories;
- `plots`: throughput and peak memory against input size (matplotlib, optional).

Speed is measured and recorded here, never asserted in a test.
"""
from .runner import FIELDS, PEERS, Candidate, Settings, measure_row, run

__all__ = ["FIELDS", "PEERS", "Candidate", "Settings", "measure_row", "run"]
