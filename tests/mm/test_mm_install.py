"""zoo.mm.install (cache, patching, reuse) and the import rules of zoo.mm; no mmdet needed."""
from __future__ import annotations

import subprocess
import sys

import pytest

from zoo.mm import install


def test_patch_setup_py_moves_every_standard_flag_to_cxx20():
    text = "extra = ['-std=c++14']\nflags = {'cxx': ['-std=c++17', '-O3'], 'nvcc': ['-std=c++14']}\n"
    patched = install.patch_setup_py(text)
    assert "c++14" not in patched and "c++17" not in patched
    assert patched.count("-std=c++20") == 3 and "-O3" in patched


def test_cache_key_names_mmcv_torch_python_and_device():
    import torch

    key = install.cache_key(cuda=False)
    assert key.startswith(f"mmcv-{install.MMCV_VERSION}_torch-{torch.__version__}"
                          f"_cp{sys.version_info[0]}{sys.version_info[1]}")
    assert key.endswith("_cpu")
    if torch.version.cuda:
        assert install.cache_key(cuda=True).endswith("_cu" + torch.version.cuda.replace(".", ""))


def test_cache_dir_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv(install.CACHE_ENV, str(tmp_path / "wheels"))
    assert install.cache_root() == (tmp_path / "wheels").resolve()
    assert install.cache_root(str(tmp_path / "other")) == (tmp_path / "other").resolve()


def test_second_run_reuses_the_cached_wheel(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(install.CACHE_ENV, str(tmp_path))
    key_dir = tmp_path / install.cache_key(install.want_cuda_ops("off"))
    key_dir.mkdir()
    wheel = key_dir / f"mmcv-{install.MMCV_VERSION}-cp311-cp311-linux_x86_64.whl"
    wheel.write_bytes(b"not really a wheel")

    def no_build(*args, **kwargs):
        raise AssertionError("rebuilt although a cached wheel exists")

    monkeypatch.setattr(install, "build_wheel", no_build)
    assert install.get_wheel(cuda_mode="off") == wheel
    assert install.main(["--cuda", "off", "--print-wheel"]) == 0
    assert capsys.readouterr().out.strip() == str(wheel)
    wheel.unlink()
    assert install.main(["--cuda", "off", "--print-wheel"]) == 1


def test_cuda_ops_only_with_a_toolkit_and_a_gpu(monkeypatch):
    import torch

    assert install.want_cuda_ops("off") is False
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert install.want_cuda_ops("auto") is False
    monkeypatch.setattr(install, "_cuda_toolkit", lambda: None)
    with pytest.raises(SystemExit):
        install.want_cuda_ops("on")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_import_zoo_never_imports_zoo_mm():
    r = _python("import sys, zoo, timm; timm.create_model('ravlt_t');"
                "bad = [m for m in sys.modules if m == 'zoo.mm' or m.split('.')[0] in "
                "('mmdet', 'mmseg', 'mmengine', 'mmcv')];"
                "assert not bad, bad")
    assert r.returncode == 0, r.stderr


def test_zoo_mm_imports_without_openmmlab():
    # sys.modules[name] = None hides an installed package from find_spec and import.
    r = _python("import sys\n"
                "for m in ('mmdet', 'mmseg', 'mmengine', 'mmcv'): sys.modules[m] = None\n"
                "import zoo.mm, zoo.mm.install\n"
                "assert zoo.mm.registered_in() == [] and not hasattr(zoo.mm, 'ZooBackbone')\n"
                "assert zoo.mm.available() == {'mmengine': False, 'mmdet': False, 'mmseg': False}\n"
                "assert zoo.mm.config_file('mask-rcnn_ravlt-s_fpn_1x_coco').endswith('.py')\n")
    assert r.returncode == 0, r.stderr


def test_every_config_is_listed_once():
    import zoo.mm

    configs = zoo.mm.list_configs()
    assert len(configs) == len({c.rsplit("/", 1)[-1] for c in configs})
    for family in ("ravlt", "mavit"):
        for name in (f"mask-rcnn_{family}-s_fpn_1x_coco", f"mask-rcnn_{family}-s_fpn_ms-crop-3x_coco",
                     f"retinanet_{family}-t_fpn_1x_coco",
                     f"cascade-mask-rcnn_{family}-s_fpn_4conv1fc-giou_ms-crop-3x_coco",
                     f"upernet_{family}-s_160k_ade20k-512x512", f"fpn_{family}-s_80k_ade20k-512x512"):
            assert zoo.mm.config_file(name)
