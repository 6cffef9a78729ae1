"""zoo/metadata and the cards generated from it: up to date, and consistent with the registry and the pins."""
from __future__ import annotations

from pathlib import Path

import pytest
import timm
import yaml
from rows import all_rows

import zoo
from zoo import metadata
from zoo.cards import README_END, README_START, main, render_card, render_readme_table

ROOT = Path(__file__).resolve().parents[1]
ROWS = {row.name: row for row in all_rows()}
CARDS = metadata.card_names()


def test_every_card_has_metadata_and_every_metadata_a_card():
    assert set(CARDS) == {p.stem for p in (ROOT / "model_cards").glob("*.md")}


@pytest.mark.parametrize("card", CARDS)
def test_committed_card_is_the_generated_one(card):
    committed = (ROOT / "model_cards" / f"{card}.md").read_text(encoding="utf-8")
    assert committed == render_card(card), (f"model_cards/{card}.md differs from zoo/metadata/{card}.yaml: edit the "
                                            f"metadata and run `python -m zoo.cards`")


def test_readme_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = readme.index(README_START) + len(README_START), readme.index(README_END)
    assert readme[start:end].strip() == render_readme_table().strip(), "run `python -m zoo.cards`"


def test_check_mode_reports_a_stale_card(tmp_path, capsys):
    (tmp_path / "ravlt.md").write_text("stale\n")
    assert main(["ravlt", "--out", str(tmp_path), "--readme", "", "--check"]) == 1
    assert "ravlt.md" in capsys.readouterr().out
    assert main(["ravlt", "--out", str(tmp_path), "--readme", ""]) == 0
    assert main(["ravlt", "--out", str(tmp_path), "--readme", "", "--check"]) == 0


def test_metadata_names_are_exactly_the_registered_models():
    described = [name for card in CARDS for name in metadata.load(card)["variants"]]
    assert len(described) == len(set(described)), "a model is on two cards"
    assert set(described) == set(zoo.list_models())


@pytest.mark.parametrize("name", sorted(ROWS))
def test_variant_agrees_with_its_pins_and_cfg(name):
    row, entry = ROWS[name], metadata.variant(name)
    assert entry["params"] == row.params
    assert entry["resolution"] == timm.models.get_pretrained_cfg(name).input_size[-1]
    if row.official_weights:
        assert entry.get("weights"), f"{name} has official weights: the metadata must say where from"
        assert entry.get("metrics") or entry.get("metrics_owed"), \
            f"{name} has official weights: give its reported metrics, or metrics_owed with the reason"
    else:
        assert not entry.get("weights"), f"{name} has no official weights (tests/rows), the metadata names some"


@pytest.mark.parametrize("card", CARDS)
def test_card_header_is_huggingface_yaml_with_the_reported_metrics(card):
    text = render_card(card)
    assert text.startswith("---\n")
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["library_name"] == "timm" and header["license"]
    meta = metadata.load(card)
    for model in header.get("model-index", []):
        reported = [m for m in meta["variants"][model["name"]]["metrics"] if not m.get("setting")]
        assert [r["metrics"][0]["value"] for r in model["results"]] == [m["value"] for m in reported]


def test_one_model_card():
    text = render_card("ravlt", only="ravlt_s.in1k")
    assert 'zoo.create_model("ravlt_s", pretrained=True)' in text
    assert "`ravlt_t`" not in text.split("## Variants")[1].split("##")[0]
    with pytest.raises(metadata.MetadataError, match="not on card"):
        render_card("ravlt", only="mavit_s")


def test_reported_top1_reads_the_metadata():
    for name in ROWS:
        listed = [m["value"] for m in metadata.reported_metrics(name)
                  if m["metric"] == "top1" and m["dataset"] == "imagenet-1k"]
        assert metadata.reported_top1(name) == (listed[0] if listed else None)
    assert metadata.reported_top1("resnet50") is None  # not a zoo model


def test_speed_tables_are_copies_of_the_recorded_results():
    copies = sorted((ROOT / "zoo" / "metadata" / "speed").glob("*"))
    assert copies
    for copy in copies:
        recorded = ROOT / "benchmarks" / "results" / copy.name
        assert recorded.is_file(), f"{copy.name}: no such file in benchmarks/results"
        assert copy.read_bytes() == recorded.read_bytes(), f"{copy.name} differs from benchmarks/results/"


def test_a_zoo_bench_run_becomes_a_speed_table_beside_official_and_peers():
    from zoo.cards import _bench_table

    def row(model, source, size, ips, mib, status="ok"):
        return dict(model=model, source=source, infer_img_size=str(size), infer_samples_per_sec=str(ips),
                    infer_peak_mem_mib=str(mib), status=status)

    rows = [row("ravlt_t", "zoo", 224, 10.0, 800), row("ravlt_t", "official", 224, 8.0, 900),
            row("ravlt_t", "zoo", 512, 2.0, 950), row("ravlt_t", "official", 512, 0, 0, status="failed"),
            row("convnext_tiny", "timm", 224, 12.0, 700), row("mavit_t", "zoo", 224, 9.0, 800)]
    text = _bench_table("run", rows, ["ravlt_t"], "cpu")
    lines = text.splitlines()
    assert "| ravlt_t | 224 | 8 | 10 | 1.25× | 900 | 800 |" in lines      # 10 / 8 img/s
    assert "| ravlt_t | 512 | - | 2 | - | - | 950 |" in lines              # the official row failed: no ratio
    assert not any("mavit_t" in line for line in lines)                  # another card's model
    assert "convnext_tiny 12 / -" in text                                # peers at the same sizes
    assert _bench_table("run", rows, ["soft_tiny"], "cpu") is None


def test_zoo_convert_writes_the_card_beside_config(tmp_path):
    import torch

    from zoo.cli.convert import convert

    checkpoint = tmp_path / "weights.pth"
    torch.save(zoo.create_model("poolformerv1_s12").state_dict(), checkpoint)
    out = tmp_path / "converted"
    assert convert("poolformerv1_s12", checkpoint, out) == 0
    assert (out / "config.json").is_file()
    assert (out / "README.md").read_text(encoding="utf-8") == render_card("poolformerv1", only="poolformerv1_s12")


@pytest.mark.parametrize("card", ["ravlt", "maxim"])
def test_usage_snippet_runs(card, tmp_path, monkeypatch):
    # The card's code, as a user copies it, with random weights and a generated image in place of the photo.
    import numpy as np
    from PIL import Image

    meta = metadata.load(card)
    text = render_card(card)
    code = text.split("## Usage")[1].split("```python\n")[1].split("```")[0]
    code = code.replace("pretrained=True", "pretrained=False")
    for name in ("cat.jpg", "noisy.png"):
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(tmp_path / name)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"model_cards/{card}.md", "exec"), {})
    assert meta["usage"]["model"] in code
