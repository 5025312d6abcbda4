"""Runs: the run directory and everything read from or written into it.

Owns: the layout and its one reader (`RunDir`: config, card, status, split hashes, test split,
checkpoints), claiming and publishing a directory safely (`place`), the run card's records
(`card`), and loading what a run holds (`loading`: model, predictor, generator).
May import: tasks, inference, evaluation, methods, data, models, config and the base modules.
"""

from tunelab.runs.directory import RunDir
from tunelab.runs.loading import load_generator, load_predictor, load_run_model

__all__ = ["RunDir", "load_generator", "load_predictor", "load_run_model"]
