"""Run timm's own model tests (timm's tests/test_models.py) on each zoo family's smallest variant.

    .venv/bin/python tests/timm_suite/run.py [pytest arguments ...]      (or: make timm-tests)

timm's test file is not part of its wheel. This script takes the one of the installed timm's
version: from --timm-tests FILE or $ZOO_TIMM_TESTS, else from timm's source distribution on PyPI
(`pip download timm==<version> --no-binary :all:`, cached in ~/.cache/zoo/timm-tests/<version>/).
It copies the file into that cache with the change a timm pull request adding the zoo would make:
the zoo's ViT-like models join timm's NON_STD_FILTERS and its family modules (all have
forward_intermediates) join FEAT_INTER_FILTERS (the lists are in zoo_timm_plugin.py). Then it runs
pytest on the copy with the plugin `zoo_timm_plugin.py`, which imports zoo, keeps only the zoo's
smallest variants, and marks the declared exceptions.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import timm

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from zoo_timm_plugin import ZOO_FEAT_INTER_FILTERS, ZOO_NON_STD_FILTERS  # noqa: E402

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "zoo" / "timm-tests" / timm.__version__
NON_STD_ANCHOR = "NON_STD_FILTERS = ["
FEAT_INTER_ANCHOR = "FEAT_INTER_FILTERS = ["


def timm_test_file(given: str | None) -> Path:
    """timm's tests/test_models.py for the installed timm version (downloaded once)."""
    if given:
        path = Path(given)
        if not path.is_file():
            raise SystemExit(f"--timm-tests / ZOO_TIMM_TESTS: no file {path}")
        return path
    cached = CACHE / "test_models.py"
    if cached.is_file():
        return cached
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"fetching timm {timm.__version__}'s source distribution from PyPI into {CACHE}", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", f"timm=={timm.__version__}", "--no-deps",
                    "--no-binary", ":all:", "-d", str(CACHE)], check=True)
    sdist = next(CACHE.glob("timm-*.tar.gz"), None)
    if sdist is None:
        raise SystemExit(f"pip downloaded no timm source distribution into {CACHE}")
    with tarfile.open(sdist) as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith("/tests/test_models.py")), None)
        if member is None:
            raise SystemExit(f"{sdist.name} has no tests/test_models.py: pass --timm-tests with timm's file "
                             f"for version {timm.__version__} (github.com/huggingface/pytorch-image-models)")
        cached.write_bytes(tar.extractfile(member).read())
    return cached


def patched_copy(source: Path) -> Path:
    """The test file with the zoo's entries in two of timm's lists, written next to the cache."""
    text = source.read_text()
    for anchor, entries in ((NON_STD_ANCHOR, ZOO_NON_STD_FILTERS), (FEAT_INTER_ANCHOR, ZOO_FEAT_INTER_FILTERS)):
        if text.count(anchor) != 1:
            raise SystemExit(f"{source}: expected one line starting {anchor!r} (one of timm's model lists)")
        listed = ", ".join(repr(e) for e in entries)
        text = text.replace(anchor, f"{anchor}\n    {listed},  # the zoo's (tests/timm_suite/zoo_timm_plugin.py)", 1)
    target = CACHE / "run" / "test_models.py"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timm-tests", default=os.environ.get("ZOO_TIMM_TESTS"),
                        help="timm's tests/test_models.py (default: from timm's sdist on PyPI, cached)")
    args, pytest_args = parser.parse_known_args(argv)
    test_file = patched_copy(timm_test_file(args.timm_tests))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(HERE), str(HERE.parent)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    command = [sys.executable, "-m", "pytest", str(test_file), "-p", "zoo_timm_plugin", "-p", "no:cacheprovider",
               "--rootdir", str(test_file.parent), "-c", os.devnull,
               "-W", "ignore::pytest.PytestUnknownMarkWarning", *pytest_args]  # timm's markers are its pyproject's
    print(" ".join(command), flush=True)
    return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main())
