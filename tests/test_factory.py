"""Names: `import zoo` registers every family; unknown names get close suggestions."""
import subprocess
import sys

import pytest
import timm

import zoo


def test_every_zoo_name_is_a_timm_model():
    names = zoo.list_models()
    assert names, "import zoo registered nothing"
    assert all(timm.is_model(n) for n in names)
    assert set(zoo.list_models("ravlt_*")) == {"ravlt_t", "ravlt_s", "ravlt_b", "ravlt_l"}


def test_unknown_name_suggests_close_ones():
    with pytest.raises(zoo.UnknownModelError) as err:
        zoo.create_model("ravlt_xs")
    message = str(err.value)
    assert "'ravlt_xs'" in message
    suggestions = message.split("Did you mean:")[1].split("?")[0]
    assert "ravlt_s" in suggestions


def test_unknown_name_with_pretrained_tag():
    with pytest.raises(zoo.UnknownModelError, match="mavit_s"):
        zoo.create_model("mavitt_s.in1k")


def test_import_zoo_is_cheap():
    """`import zoo` loads no Triton kernel module and compiles nothing beyond what timm imports."""
    # Kernel packages and their plain-PyTorch references may load; their Triton modules,
    # training, Hydra and the mm adapters must not.
    script = (
        "import sys, timm; before = set(sys.modules); import zoo; "
        "added = set(sys.modules) - before; "
        "print(sorted(m for m in added if 'triton' in m or m.startswith(('zoo.train', 'zoo.mm', 'hydra', 'mm'))))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
