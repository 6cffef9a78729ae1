"""`python -m zoo.bench._child JOB`: one zoo-bench row in its own process (zoo-bench --isolate)."""
import sys

from zoo.bench.runner import child_main

if __name__ == "__main__":
    child_main(sys.argv[1])
