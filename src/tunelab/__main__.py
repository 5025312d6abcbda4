"""`python -m tunelab ...`: the CLI, for launchers that start a module (torchrun -m tunelab,
accelerate launch -m tunelab)."""

from tunelab.cli import main

if __name__ == "__main__":
    main()
