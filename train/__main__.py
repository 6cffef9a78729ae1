"""`python -m zoo.train [overrides]`, the same as `zoo-train` (works under torchrun)."""
from .cli import train_main

if __name__ == "__main__":
    train_main()
