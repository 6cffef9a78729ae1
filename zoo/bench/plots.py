"""zoo-bench's figures: throughput and peak memory against input size, one line per model, log scales.

matplotlib is optional (`pip install matplotlib`, or the `plots` extra): without it the run says so
and writes no figure. Rows that were skipped or failed leave a gap in their line.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["write_plots"]

_METRICS = {  # file suffix -> (column after the mode prefix, axis label)
    "throughput": ("samples_per_sec", "images / s"),
    "memory": ("peak_mem_mib", "peak memory (MiB)"),
}


# The same model in one colour: the zoo's line solid, the official code's dashed, forced kernel paths dotted.
_LINESTYLES = {"official": "--", "reference": ":", "triton": "-."}


def _model_and_variant(label: str) -> tuple[str, str]:
    """'ravlt_t [official] (batch 8)' -> ('ravlt_t (batch 8)', 'official')."""
    if "[" in label and "]" in label:
        head, _, rest = label.partition("[")
        variant, _, tail = rest.partition("]")
        return (head.strip() + tail).strip(), variant.strip()
    return label, ""


def _colours(series: dict[str, Any], cmap: Any) -> dict[str, Any]:
    models = list(dict.fromkeys(_model_and_variant(label)[0] for label in series))
    return {model: cmap(i % cmap.N) for i, model in enumerate(models)}


def _series(rows: Sequence[dict[str, Any]], mode: str, column: str) -> dict[str, list[tuple[int, float]]]:
    """line label -> (input size, value) points of the rows measured in `mode` that have `column`."""
    batches = {r.get(f"{mode}_batch_size") for r in rows}
    lines: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        value = r.get(f"{mode}_{column}")
        if r.get("status") != "ok" or value in (None, ""):
            continue
        label = r["label"] + (f" (batch {r[f'{mode}_batch_size']})" if len(batches) > 1 else "")
        lines.setdefault(label, []).append((int(r[f"{mode}_img_size"]), float(value)))
    return {label: sorted(points) for label, points in lines.items()}


def write_plots(rows: Sequence[dict[str, Any]], out: Path, title: str = "") -> tuple[list[Path], str | None]:
    """Writes <out>_throughput.png and <out>_memory.png (a panel per measured mode, inference / training).

    Returns the files written and, when none could be, why (matplotlib missing, nothing measured).
    """
    try:
        import matplotlib
        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError as err:
        return [], f"matplotlib is not installed ({err}); pip install matplotlib for the figures"
    written: list[Path] = []
    for suffix, (column, axis) in _METRICS.items():
        panels = [(mode, series) for mode in ("infer", "train") if (series := _series(rows, mode, column))]
        if not panels:
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(9 * len(panels), 5.5), squeeze=False)
        for ax, (mode, series) in zip(axes[0], panels, strict=True):
            colours = _colours(series, plt.get_cmap("tab20"))
            for label, points in series.items():
                sizes, values = zip(*points, strict=True)
                model, variant = _model_and_variant(label)
                ax.plot(sizes, values, marker="o", label=label, color=colours[model],
                        linestyle=_LINESTYLES.get(variant, "-"))
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            sizes = sorted({s for points in series.values() for s, _ in points})
            ax.set_xticks(sizes, [str(s) for s in sizes])
            ax.minorticks_off()
            ax.set_xlabel("input size (pixels per side)")
            ax.set_ylabel(axis)
            ax.set_title(f"{'inference' if mode == 'infer' else 'training step'}: {axis}")
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        if title:
            fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        path = Path(f"{out}_{suffix}.png")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written, None if written else "no row was measured"
