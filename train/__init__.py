"""Training entry points (`zoo-train`, `zoo-validate`); installed as `zoo.train`."""
