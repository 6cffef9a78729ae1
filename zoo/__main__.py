"""`python -m zoo`: the zoo's registry as a table.

One row per registered `architecture.tag`: family, parameter count, input size, how far its official
weights can be trusted and how they are fetched (`zoo.pretrained.weights_status`), and its model card.

    python -m zoo                      # every model
    python -m zoo 'mavit_*' 'vig_*'    # names matching any of the wildcards
    python -m zoo --format markdown    # or csv

Parameter counts come from a build on the meta device (no memory allocated, no initialisation run), so the
whole table takes seconds.
"""
from __future__ import annotations

import argparse
import csv
import fnmatch
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from timm.models import get_arch_pretrained_cfgs
from torch.overrides import TorchFunctionMode

from .factory import list_models
from .pretrained import WEIGHTS_ROUTES, WEIGHTS_STATUSES, weights_status

# The model cards live in the repository (not in the wheel): the column names the repository path.
CARDS = Path(__file__).resolve().parent.parent / "model_cards"
COLUMNS = ("name", "family", "params", "input", "weights", "source", "card")


@dataclass(frozen=True)
class Row:
    name: str  # architecture.tag (the architecture alone when it has no tag)
    family: str
    params: int
    input: str  # HxW, "fixed" when the model takes only that size
    weights: str  # a WEIGHTS_STATUSES key
    source: str  # a WEIGHTS_ROUTES key, or "-"
    card: str  # repository path, or "-"

    def cells(self) -> tuple[str, ...]:
        return (self.name, self.family, f"{self.params:,}", self.input, self.weights, self.source, self.card)


class _SkipInitOnMeta(TorchFunctionMode):
    """Skips in-place ops on meta tensors (the weight initialisers: uniform_, normal_, trunc_normal_'s clamp_,
    zero_, fill_ ...): they only cost time there (meta ops of the decomposed initialisers run in Python,
    about 10x the rest of a build) and change no shape. Ops that change a shape in place still run."""

    SHAPE_CHANGING = frozenset({"resize_", "resize_as_", "set_", "as_strided_", "squeeze_", "unsqueeze_", "t_",
                                "transpose_", "swapdims_", "swapaxes_", "requires_grad_", "detach_"})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        target = args[0] if args else (kwargs or {}).get("tensor")  # torch.nn.init passes tensor=...
        if (name.endswith("_") and not name.startswith("_") and name not in self.SHAPE_CHANGING
                and isinstance(target, torch.Tensor) and target.is_meta):
            return target
        return func(*args, **(kwargs or {}))


def count_params(architecture: str) -> int:
    """Parameters of the architecture's default configuration, built on the meta device (nothing allocated,
    no initialiser run)."""
    with torch.device("meta"), _SkipInitOnMeta():
        model = timm.create_model(architecture)
    return sum(p.numel() for p in model.parameters())


def _family_and_card(architecture: str) -> tuple[str, str]:
    """The family is the card's name: the architecture's first word (mavit_t -> mavit.md, kept apart from
    ravlt.md though both live in ravlt.py), else the family module's name."""
    module = timm.models.model_entrypoint(architecture).__module__.rsplit(".", 1)[-1]
    candidates = (architecture.split("_")[0], module, module.removesuffix("_models"))
    for stem in candidates:
        if (CARDS / f"{stem}.md").is_file():
            return stem, f"model_cards/{stem}.md"
    return module, "-"


def _input(cfg: dict) -> str:
    if not cfg.get("input_size"):
        return "-"
    _, height, width = cfg["input_size"]
    return f"{height}x{width}" + (" fixed" if cfg.get("fixed_input_size") else "")


def registry_rows(patterns: Sequence[str] = ("*",)) -> list[Row]:
    """The table's rows for the zoo names matching any of `patterns` (fnmatch wildcards on architecture[.tag])."""
    rows = []
    for architecture in list_models():
        names = list(get_arch_pretrained_cfgs(architecture).items()) or [(architecture, None)]
        names = [(n, c) for n, c in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        if not names:
            continue
        params = count_params(architecture)
        family, card = _family_and_card(architecture)
        for name, cfg in names:
            cfg = cfg.to_dict() if cfg is not None else {}
            status = weights_status(name)
            rows.append(Row(name, family, params, _input(cfg), status.status, status.route, card))
    return rows


def format_table(rows: Sequence[Row], fmt: str = "text") -> str:
    """The rows as an aligned text table, a Markdown table, or CSV."""
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows([r.name, r.family, r.params, r.input, r.weights, r.source, r.card] for r in rows)
        return out.getvalue()
    cells = [COLUMNS] + [r.cells() for r in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(c) + " |" for c in cells]
        lines.insert(1, "|" + "|".join("---:" if h == "params" else "---" for h in COLUMNS) + "|")
        return "\n".join(lines) + "\n"
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    right = COLUMNS.index("params")
    return "\n".join(
        "  ".join(c.rjust(w) if i == right else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))).rstrip()
        for line in cells) + "\n"


def legend() -> str:
    lines = ["weights:"] + [f"  {k:<12} {v}" for k, v in WEIGHTS_STATUSES.items()]
    lines += ["source:"] + [f"  {k:<12} {v}" for k, v in WEIGHTS_ROUTES.items()]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo", description=__doc__.split("\n\n")[0])
    parser.add_argument("patterns", nargs="*", default=["*"],
                        help="wildcards on architecture[.tag], e.g. 'mavit_*' (default: every model)")
    parser.add_argument("--format", choices=("text", "markdown", "csv"), default="text")
    args = parser.parse_args(argv)
    rows = registry_rows(args.patterns)
    if not rows:
        parser.error(f"no zoo model matches {' '.join(args.patterns)}; `python -m zoo` lists them all")
    sys.stdout.write(format_table(rows, args.format))
    if args.format != "csv":
        sys.stdout.write(f"\n{len(rows)} models. " + legend())
    return 0


if __name__ == "__main__":
    sys.exit(main())
