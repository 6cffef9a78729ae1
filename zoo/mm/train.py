"""Train or evaluate a shipped (or any) mmdet / mmseg config: mmdet's / mmseg's `tools/train.py`, pip-installed.

    python -m zoo.mm.train mask-rcnn_ravlt-s_fpn_1x_coco --work-dir work/ravlt_s \\
        --cfg-options train_dataloader.dataset.data_root=/data/coco/
    torchrun --nproc-per-node 8 -m zoo.mm.train upernet_ravlt-s_160k_ade20k-512x512 --launcher pytorch
    python -m zoo.mm.train mask-rcnn_ravlt-s_fpn_1x_coco --eval work/ravlt_s/epoch_12.pth

CONFIG is a shipped config's name (`zoo.mm.list_configs()`) or a path.  On a
machine without a CUDA device, `AmpOptimWrapper` is replaced by the fp32
`OptimWrapper` (mmengine's AMP wrapper refuses to run on CPU).
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys


def main(argv: list[str] | None = None) -> int:
    from mmengine.config import Config, DictAction
    from mmengine.runner import Runner

    import zoo.mm

    p = argparse.ArgumentParser(prog="python -m zoo.mm.train", description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="a shipped config's name or a config file")
    p.add_argument("--work-dir", help="where logs and checkpoints go (default ./work_dirs/<config>)")
    p.add_argument("--eval", metavar="CHECKPOINT", help="evaluate this checkpoint on the test set instead of training")
    p.add_argument("--resume", action="store_true", help="resume from the latest checkpoint in the work dir")
    p.add_argument("--cfg-options", nargs="+", action=DictAction, help="key=value overrides of the config")
    p.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    p.add_argument("--local-rank", "--local_rank", type=int, default=0)
    args = p.parse_args(argv)
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)

    path = args.config if osp.isfile(args.config) else zoo.mm.config_file(args.config)
    cfg = Config.fromfile(path)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get("work_dir") or osp.join("work_dirs", osp.splitext(osp.basename(path))[0])

    import torch

    if not torch.cuda.is_available() and cfg.get("optim_wrapper", {}).get("type") == "AmpOptimWrapper":
        cfg.optim_wrapper.type = "OptimWrapper"
        cfg.optim_wrapper.pop("loss_scale", None)
    if args.eval:
        cfg.load_from = args.eval
        Runner.from_cfg(cfg).test()
        return 0
    cfg.resume = args.resume
    Runner.from_cfg(cfg).train()
    return 0


if __name__ == "__main__":
    sys.exit(main())
