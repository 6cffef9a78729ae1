"""The zoo's model families; importing this package registers them with timm."""
from . import ravlt
