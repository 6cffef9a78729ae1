"""Hydra configs, shipped as package data of `zoo` (found as `pkg://zoo.configs`)."""
