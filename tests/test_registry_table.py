"""`python -m zoo`: the registry as a table (issue 21, item 5)."""
from __future__ import annotations

import csv
import io
import runpy
import sys

import pytest
import timm
from rows import all_rows

import zoo
from zoo.__main__ import CARDS, format_table, main, registry_rows


@pytest.fixture(scope="module")
def table():
    return {row.name: row for row in registry_rows()}


def test_one_row_per_registered_name_and_tag(table):
    expected = set()
    for architecture in zoo.list_models():
        expected |= set(timm.models.get_arch_pretrained_cfgs(architecture)) or {architecture}
    assert set(table) == expected
    assert len(table) >= 70


def test_params_counted_on_the_meta_device_are_the_spec_counts(table):
    """The spec's exact counts (the official builders', tests/rows) for every model, from meta-device builds."""
    spec = {row.name: row.params for row in all_rows()}
    for name, row in table.items():
        assert row.params == spec[name.split(".")[0]], name


# What the specs and READMEs say about each source (independent of the code under test).
EXPECTED_WEIGHTS = {
    "ravlt_t.in1k": ("listed", "hub"),                   # README links RAVLT_T.pth
    "mavit_t.in1k": ("unconfirmed", "hub"),              # README links only the repository
    "mavit_l.in1k": ("listed", "hub"),                   # MAViT_L.pth seen in the repository's history
    "vig_h_b.in1k": ("unconfirmed", "hub"),
    "soft_tiny.in1k": ("listed", "gdrive"),
    "soft_norm_small_24m.in1k": ("unconfirmed", "gdrive"),  # one file, two candidate architectures
    "soft_small": ("none", "-"),                          # no checkpoint released
    "inline_swin_base_384.in1k": ("none", "-"),
    "inline_swin_tiny.in1k": ("listed", "url"),           # Tsinghua share link
    "maxformer_10_768.t1_in1k": ("listed", "url"),        # GitHub release
    "maxim_3s_denoising_sidd": ("listed", "url"),         # Google Cloud bucket
    "poolformerv1_s12.sail_in1k_timm": ("listed", "hub"),
    "inception_transformer_small.in1k": ("listed", "hub"),
}


def test_weights_and_source_columns(table):
    for name, (weights, source) in EXPECTED_WEIGHTS.items():
        assert (table[name].weights, table[name].source) == (weights, source), name
    # No SHA-256 is recorded yet (no official file could be downloaded here): nothing claims "verified".
    assert {row.weights for row in table.values()} <= {"listed", "unconfirmed", "none"}


def test_input_size_and_fixed_size(table):
    assert table["ravlt_t.in1k"].input == "224x224"
    assert table["inline_deit_small.in1k"].input == "288x288 fixed"
    assert table["inception_transformer_base_384.in1k"].input == "384x384 fixed"


def test_every_row_names_its_family_card(table):
    for name, row in table.items():
        assert row.card != "-" and (CARDS.parent / row.card).is_file(), name
    assert (table["mavit_t.in1k"].family, table["ravlt_t.in1k"].family) == ("mavit", "ravlt")
    assert table["vit_base_patch16_224_ggem.augreg2_in21k_ft_in1k"].card == "model_cards/ggem.md"


def test_formats(capsys):
    assert main(["ravlt_t*", "mavit_t*", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["name"], r["params"], r["weights"]) for r in rows] == [
        ("mavit_t.in1k", "16449128", "unconfirmed"), ("ravlt_t.in1k", "14897768", "listed")]
    assert main(["soft_tiny*", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| name | family | params | input | weights | source | card |\n|---|---|---:|")
    assert "| soft_tiny.in1k | soft | 13,069,056 | 224x224 | listed | gdrive | model_cards/soft.md |" in out
    assert "unconfirmed" in out and "gdown" in out  # the legend


def test_text_table_is_aligned():
    rows = registry_rows(["ravlt_*"])
    lines = format_table(rows).splitlines()
    assert len(lines) == 1 + len(rows) == 5
    start = lines[0].index("family")
    assert all(line[start - 2:start] == "  " and line[start] != " " for line in lines)


def test_a_pattern_that_matches_nothing_is_an_error(capsys):
    with pytest.raises(SystemExit) as err:
        main(["no_such_model*"])
    assert err.value.code == 2
    assert "no zoo model matches no_such_model*" in capsys.readouterr().err


def test_python_dash_m_zoo(monkeypatch, capsys):
    """What `python -m zoo maxformer_10_384*` runs (runpy is how -m runs a package's __main__), in-process."""
    monkeypatch.setattr(sys, "argv", ["python -m zoo", "maxformer_10_384*"])
    monkeypatch.delitem(sys.modules, "zoo.__main__")  # as in a fresh `python -m zoo` (runpy warns otherwise)
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("zoo", run_name="__main__")
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "maxformer_10_384.t4_in1k" in out and "model_cards/maxformer.md" in out
