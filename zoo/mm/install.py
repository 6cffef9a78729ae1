"""Install mmdet 3 / mmseg 1 support into the running environment.

    python -m zoo.mm.install                 # build mmcv once, cache it, install everything
    python -m zoo.mm.install --wheel-only    # only build (or find) the cached mmcv wheel
    python -m zoo.mm.install --print-wheel   # path of the cached wheel for this environment

mmdet 3.3 and mmsegmentation 1.2.2 need ``mmcv>=2.0.0rc4,<2.2.0``; the package
index has only the mmcv 2.1.0 *source* release, and it does not build on a
current torch as released.  This script builds it the way that works
(see ``docs/downstream.md``, section 1):

1. torch must already be installed (mmcv's ``setup.py`` imports it), so the
   build runs without build isolation;
2. mmcv's ``setup.py`` needs ``pkg_resources`` (setuptools < 70) and the old
   ``bdist_wheel`` (wheel < 0.45).  Instead of downgrading the environment's
   own setuptools, both are installed ``--no-deps`` into a private overlay
   directory inside the cache and put first on ``PYTHONPATH`` for the build
   only;
3. every ``-std=c++14`` / ``-std=c++17`` in ``setup.py`` becomes
   ``-std=c++20`` (torch's headers need C++20);
4. ``MMCV_WITH_OPS=1`` (nms, RoIAlign, ... which mmdet imports);
   ``FORCE_CUDA=1`` only when CUDA ops are wanted (``--cuda auto``: a CUDA
   toolkit is present, torch is a CUDA build and a GPU is visible), else CPU
   ops;
5. two speed-ups that change nothing in the result's behaviour: ``-g0`` (no
   debug information; Python's CFLAGS carry ``-g``) and a precompiled header
   for the torch headers every op file includes (see ``_precompile_header``).
   The source tree lives in the cache, so an interrupted build resumes.

The wheel lands in ``$ZOO_WHEEL_CACHE`` (default ``~/.cache/zoo/wheels``)
under a directory keyed by (mmcv, torch, python, cuda), e.g.
``mmcv-2.1.0_torch-2.14.1+cu130_cp311_cpu/``; a second run finds it there and
only installs (seconds).  The compile runs under ``nice`` with
``MAX_JOBS=2`` (``--jobs``) so it does not starve the machine.  Then it
installs the wheel with mmengine, mmdet 3.3.0, mmsegmentation 1.2.2, and
ftfy + regex (imported by mmseg without being declared), pinning the
installed torch so pip never replaces it.  mmengine's own use of
``pkg_resources`` at run time is handled by ``zoo.mm`` (see ``_compat``).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

MMCV_VERSION = "2.1.0"
MMENGINE_VERSION = "0.10.7"
MMDET_VERSION = "3.3.0"
MMSEG_VERSION = "1.2.2"
BUILD_TOOLS = ("setuptools<70", "wheel<0.45")
CACHE_ENV = "ZOO_WHEEL_CACHE"
DEFAULT_CACHE = Path("~/.cache/zoo/wheels")


def _log(msg: str) -> None:
    print(f"[zoo.mm.install] {msg}", file=sys.stderr, flush=True)


def cache_root(cache_dir: str | None = None) -> Path:
    """The wheel cache: ``cache_dir``, else ``$ZOO_WHEEL_CACHE``, else ``~/.cache/zoo/wheels``."""
    root = cache_dir or os.environ.get(CACHE_ENV) or str(DEFAULT_CACHE)
    return Path(root).expanduser().resolve()


def _cuda_toolkit() -> str | None:
    """The CUDA toolkit's home if one is usable (nvcc present), else None."""
    try:
        from torch.utils.cpp_extension import CUDA_HOME
    except Exception:  # pragma: no cover - torch without cpp_extension
        return None
    if CUDA_HOME and os.path.exists(os.path.join(CUDA_HOME, "bin", "nvcc")):
        return CUDA_HOME
    return None


def want_cuda_ops(mode: str) -> bool:
    """Whether to build mmcv's CUDA ops.

    ``auto``: a CUDA toolkit, a CUDA build of torch, and a visible GPU (or
    ``TORCH_CUDA_ARCH_LIST`` set, which tells the compiler which GPUs to build
    for on a GPU-less build machine).  ``on``/``off`` force it.
    """
    import torch

    if mode == "off":
        return False
    if mode == "on":
        if torch.version.cuda is None or _cuda_toolkit() is None:
            raise SystemExit("--cuda on needs a CUDA build of torch and a CUDA toolkit (nvcc)")
        return True
    if torch.version.cuda is None or _cuda_toolkit() is None:
        return False
    return torch.cuda.is_available() or bool(os.environ.get("TORCH_CUDA_ARCH_LIST"))


def cache_key(cuda: bool) -> str:
    """(mmcv, torch, python, cuda) as a directory name."""
    import torch

    py = f"cp{sys.version_info.major}{sys.version_info.minor}"
    dev = ("cu" + torch.version.cuda.replace(".", "")) if cuda else "cpu"
    return f"mmcv-{MMCV_VERSION}_torch-{torch.__version__}_{py}_{dev}"


def cached_wheel(key_dir: Path) -> Path | None:
    wheels = sorted(key_dir.glob(f"mmcv-{MMCV_VERSION}-*.whl"))
    return wheels[-1] if wheels else None


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive file lock, so two CI jobs sharing a cache build once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - not POSIX
            pass
        yield


def _run(cmd: list[str], env: dict | None = None, cwd: str | None = None) -> None:
    _log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, env=env, cwd=cwd)


def _pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", *args]


def patch_setup_py(text: str) -> str:
    """mmcv 2.1.0's setup.py with every -std=c++14 / -std=c++17 replaced by -std=c++20."""
    patched = re.sub(r"-std=c\+\+1[47]", "-std=c++20", text)
    return patched


def build_tools_overlay(root: Path) -> Path:
    """setuptools<70 and wheel<0.45 in a private directory (put on PYTHONPATH for the build)."""
    overlay = root / "_build_tools"
    stamp = overlay / ".complete"
    if not stamp.exists():
        if overlay.exists():
            shutil.rmtree(overlay)
        _run(_pip("install", "--quiet", "--no-deps", "--target", str(overlay), *BUILD_TOOLS))
        stamp.touch()
    return overlay


def build_wheel(key_dir: Path, cuda: bool, jobs: int, nice: int = 10) -> Path:
    """Download, patch and compile mmcv; the wheel is moved into ``key_dir`` when complete."""
    root = key_dir.parent
    overlay = build_tools_overlay(root)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(overlay)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["MMCV_WITH_OPS"] = "1"
    env["FORCE_CUDA"] = "1" if cuda else "0"
    env["MAX_JOBS"] = str(jobs)
    if not cuda:
        # mmcv's setup.py builds CUDA ops whenever torch sees a GPU; hide it for a CPU build.
        env["CUDA_VISIBLE_DEVICES"] = ""

    sdist_dir = root / "_sdist"
    sdist = sdist_dir / f"mmcv-{MMCV_VERSION}.tar.gz"
    if not sdist.exists():
        sdist_dir.mkdir(parents=True, exist_ok=True)
        # pip prepares the metadata while downloading, which imports torch and
        # pkg_resources: same environment as the build.
        _run(_pip("download", "--no-deps", "--no-build-isolation", "--no-binary", "mmcv",
                  "--dest", str(sdist_dir), f"mmcv=={MMCV_VERSION}"), env=env)
        if not sdist.exists():
            raise SystemExit(f"pip download did not produce {sdist}")

    # The source tree lives in the cache, not in a temporary directory: an
    # interrupted build (CI timeout, Ctrl-C) resumes where ninja stopped.
    build_root = root / "_build" / key_dir.name
    src = build_root / f"mmcv-{MMCV_VERSION}"
    if not (src / "setup.py").exists():
        if build_root.exists():
            shutil.rmtree(build_root)
        build_root.mkdir(parents=True)
        with tarfile.open(sdist) as tf:
            if sys.version_info >= (3, 11, 4):
                tf.extractall(build_root, filter="data")
            else:  # pragma: no cover
                tf.extractall(build_root)
    setup_py = src / "setup.py"
    patched = patch_setup_py(setup_py.read_text())
    if "-std=c++20" not in patched:
        raise SystemExit("mmcv setup.py: found no -std=c++14/17 flag to patch; unexpected source")
    setup_py.write_text(patched)
    # No debug information: Python's own CFLAGS carry -g, which makes every
    # torch-header-heavy file compile much slower and the wheel several times larger.
    # The precompiled header directory comes first on the include path (see _precompile_header).
    pch_dir = build_root / "pch"
    pch_dir.mkdir(exist_ok=True)
    env["CFLAGS"] = (env.get("CFLAGS", "") + f" -g0 -I{pch_dir}").strip()
    out = build_root / "wheelhouse"
    if out.exists():
        shutil.rmtree(out)
    cmd = _pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(out), str(src))
    if nice and shutil.which("nice"):
        cmd = ["nice", "-n", str(nice), *cmd]
    _log(f"compiling mmcv {MMCV_VERSION} ({'CUDA' if cuda else 'CPU'} ops, MAX_JOBS={jobs}) in {src}; "
         "this takes tens of minutes on 2 cores; "
         "an interrupted build resumes on the next run")
    t0 = time.time()
    _log("$ " + " ".join(cmd))
    proc = subprocess.Popen(cmd, env=env, cwd=str(build_root))
    pch = threading.Thread(target=_precompile_header, args=(src, pch_dir, proc, nice), daemon=True)
    pch.start()
    if proc.wait() != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    built = sorted(out.glob("mmcv-*.whl"))
    if not built:
        raise SystemExit("mmcv build produced no wheel")
    key_dir.mkdir(parents=True, exist_ok=True)
    partial = key_dir / (built[0].name + ".partial")
    shutil.copy2(built[0], partial)
    final = key_dir / built[0].name
    os.replace(partial, final)  # atomic: a cached wheel is always complete
    _log(f"built {final.name} in {time.time() - t0:.0f} s")
    shutil.rmtree(build_root, ignore_errors=True)
    return final


PCH_HEADER = "pytorch_cpp_helper.hpp"  # the first include of 63 of mmcv 2.1.0's 77 C++ files


def _precompile_header(src: Path, pch_dir: Path, proc: subprocess.Popen, nice: int) -> None:
    """Precompile mmcv's torch-including helper header once, with the build's own flags.

    Each mmcv op file spends most of its compile time parsing torch's headers
    (through ``pytorch_cpp_helper.hpp``); gcc uses ``<dir>/<header>.gch`` from
    the first include directory instead, when it was built with the same
    flags, and silently falls back to the header otherwise, so this can only
    make the build faster (about 5x on a loaded 2-core machine).  The flags are
    read from the ``build.ninja`` torch writes when the build starts; files
    compiled before the header is ready compile without it.  The .gch lives
    outside the source tree, so it never reaches the wheel.
    """
    target = pch_dir / (PCH_HEADER + ".gch")
    header = src / "mmcv" / "ops" / "csrc" / "common" / PCH_HEADER
    if target.exists() or not header.exists() or not shutil.which("c++"):
        return
    ninja = None
    while proc.poll() is None and ninja is None:
        found = sorted(src.glob("build/temp*/build.ninja"))
        ninja = found[0] if found else None
        if ninja is None:
            time.sleep(2)
    if ninja is None:
        return
    time.sleep(1)  # let torch finish writing it
    text = ninja.read_text()
    cflags = re.search(r"^cflags = (.*)$", text, re.M)
    post = re.search(r"^post_cflags = (.*)$", text, re.M)
    cxx = re.search(r"^cxx = (.*)$", text, re.M)
    if not (cflags and post and cxx) or "nvcc" in text:
        return  # CUDA builds: nvcc has its own flags; not worth the risk
    flags = [f for f in cflags.group(1).split() if f != "-c"]
    tmp = pch_dir / (PCH_HEADER + ".gch.partial")
    cmd = [cxx.group(1), *flags, "-x", "c++-header", str(header), "-o", str(tmp), *post.group(1).split()]
    if nice and shutil.which("nice"):
        cmd = ["nice", "-n", str(nice), *cmd]
    t0 = time.time()
    if subprocess.run(cmd, capture_output=True).returncode == 0:
        os.replace(tmp, target)  # atomic: a compile never sees half a header
        _log(f"precompiled {PCH_HEADER} in {time.time() - t0:.0f} s")
    else:
        tmp.unlink(missing_ok=True)
        _log(f"could not precompile {PCH_HEADER}; the build goes on without it")


def get_wheel(cache_dir: str | None = None, cuda_mode: str = "auto", jobs: int = 2,
              rebuild: bool = False, nice: int = 10) -> Path:
    """Path of the mmcv wheel for this environment, building it once if absent."""
    cuda = want_cuda_ops(cuda_mode)
    root = cache_root(cache_dir)
    key_dir = root / cache_key(cuda)
    with _lock(root / ".lock"):
        whl = None if rebuild else cached_wheel(key_dir)
        if whl is not None:
            _log(f"using cached wheel {whl}")
            return whl
        return build_wheel(key_dir, cuda, jobs, nice)


def install(wheel: Path) -> None:
    """Install the mmcv wheel, mmengine, mmdet, mmseg, ftfy and regex; torch stays as it is."""
    import torch

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        # Keep the installed torch (pip would otherwise be free to change it).
        fh.write(f"torch=={torch.__version__}\n")
        constraints = fh.name
    try:
        _run(_pip("install", "--constraint", constraints, str(wheel),
                  f"mmengine=={MMENGINE_VERSION}", f"mmdet=={MMDET_VERSION}",
                  f"mmsegmentation=={MMSEG_VERSION}", "ftfy", "regex"))
    finally:
        os.unlink(constraints)


def check() -> None:
    """Import what the adapters need, in a fresh interpreter."""
    code = ("import torch, mmcv, mmcv.ops, mmdet, mmseg, mmseg.utils, mmengine; "
            "b = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]]); "
            "mmcv.ops.nms(b, torch.tensor([.9, .8]), .5); "
            "import zoo.mm; from mmengine.config import Config; "
            "Config.fromfile(zoo.mm.config_file('mask-rcnn_ravlt-t_fpn_1x_coco')); "
            "Config.fromfile(zoo.mm.config_file('upernet_ravlt-s_160k_ade20k-512x512')); "
            "print('mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'mmseg', mmseg.__version__, "
            "'mmengine', mmengine.__version__)")
    _run([sys.executable, "-c", code])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zoo.mm.install", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache-dir", default=None,
                   help=f"wheel cache (default ${CACHE_ENV} or {DEFAULT_CACHE})")
    p.add_argument("--cuda", choices=("auto", "on", "off"), default="auto",
                   help="build mmcv's CUDA ops: auto = toolkit + CUDA torch + a GPU (or TORCH_CUDA_ARCH_LIST)")
    p.add_argument("--jobs", type=int, default=int(os.environ.get("MAX_JOBS", 2)),
                   help="parallel compile jobs (MAX_JOBS, default 2)")
    p.add_argument("--nice", type=int, default=10, help="niceness of the compile (default 10; 0: none)")
    p.add_argument("--rebuild", action="store_true", help="build even if a cached wheel exists")
    p.add_argument("--wheel-only", action="store_true", help="build/find the wheel, do not install")
    p.add_argument("--print-wheel", action="store_true",
                   help="print the cached wheel's path (exit 1 if absent); builds nothing")
    p.add_argument("--no-check", action="store_true", help="skip the import check after installing")
    args = p.parse_args(argv)

    try:
        import torch  # noqa: F401
    except ImportError:
        raise SystemExit("install torch first: mmcv is compiled against the installed torch") from None

    if args.print_wheel:
        key_dir = cache_root(args.cache_dir) / cache_key(want_cuda_ops(args.cuda))
        whl = cached_wheel(key_dir)
        if whl is None:
            print(f"no cached wheel in {key_dir}", file=sys.stderr)
            return 1
        print(whl)
        return 0

    t0 = time.time()
    whl = get_wheel(args.cache_dir, args.cuda, args.jobs, args.rebuild, args.nice)
    if not args.wheel_only:
        install(whl)
        if not args.no_check:
            check()
    _log(f"done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
