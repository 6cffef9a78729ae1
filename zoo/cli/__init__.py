"""The command lines (console scripts in pyproject.toml): zoo-demo, zoo-infer, zoo-convert, zoo-restore, zoo-bench.

The only part of `zoo` that may import `zoo.train` (zoo-infer reads a training run's checkpoints);
nothing else imports from here.
"""
