"""The mm tests' fixtures live in mm_fixtures.py (a unique module name: several conftest.py exist)."""
from mm_fixtures import ade_tiny, coco_tiny, official_classifier_file  # noqa: F401
