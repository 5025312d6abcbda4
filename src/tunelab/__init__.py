"""tunelab: fine-tune pre-trained language models end to end, offline, with honest reports.

The public API is what `__all__` lists; everything else may change. The workflows load on first
use, so `import tunelab` (and `tunelab --help`) does not import torch.

The layers, top to bottom; a module imports only from its own layer or below (`make lint`
checks it with import-linter, and there are no import cycles, deferred imports included):

    tunelab (this module: the public API)
    cli                     parse arguments, call one workflow, render
    serve                   the REST + OpenAI-compatible server
    workflows               one module per command: check, train, evaluate, predict, generate,
                            inspect, repeats, search (+ search_study, search_ray), export, recover
    deploy | report         export pieces (pruning, measurement, model card) | HTML reports
    training                the Trainer and its callbacks, memory, tracking
    runs                    the run directory: RunDir, claiming, checkpoints, card, loading a run
    tasks                   one file per task, registered as TaskSpec bundles
    inference               Predictor, Generator, decoding, the int8 and ONNX formats
    evaluation              metrics, baselines, error analysis, forgetting
    methods                 one file per method, registered as MethodSpec bundles
    data | models           files → clean splits | model sources, loading, precision
    config                  the schema, YAML loading, rendering (pure: no plug-ins)
    registry, io, files, console | suggest, errors    the base
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# HF_HUB_OFFLINE is the user's to set: tunelab does not change it for the process it runs in
# (README, "Where models come from"). A download tunelab starts is announced on stderr first.
from tunelab.config import RunConfig
from tunelab.errors import (
    ConfigError,
    DataError,
    ModelError,
    OutputError,
    RunDirError,
    TrainingError,
    TunelabError,
)

if TYPE_CHECKING:
    from tunelab.serve.app import create_app
    from tunelab.workflows.check import load_checked as load_config
    from tunelab.workflows.evaluate import evaluate
    from tunelab.workflows.export import export_run as export
    from tunelab.workflows.generate import generate
    from tunelab.workflows.inspect import inspect_data
    from tunelab.workflows.predict import predict
    from tunelab.workflows.repeats import cross_validate, repeat_seeds
    from tunelab.workflows.search import run_search as search
    from tunelab.workflows.train import TrainResult, train

__version__ = "0.1.0"

# public name -> (module, attribute): imported on first use
_LAZY = {
    "TrainResult": ("tunelab.workflows.train", "TrainResult"),
    "create_app": ("tunelab.serve.app", "create_app"),
    "cross_validate": ("tunelab.workflows.repeats", "cross_validate"),
    "evaluate": ("tunelab.workflows.evaluate", "evaluate"),
    "export": ("tunelab.workflows.export", "export_run"),
    "generate": ("tunelab.workflows.generate", "generate"),
    "inspect_data": ("tunelab.workflows.inspect", "inspect_data"),
    "load_config": ("tunelab.workflows.check", "load_checked"),
    "predict": ("tunelab.workflows.predict", "predict"),
    "repeat_seeds": ("tunelab.workflows.repeats", "repeat_seeds"),
    "search": ("tunelab.workflows.search", "run_search"),
    "train": ("tunelab.workflows.train", "train"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'tunelab' has no attribute {name!r}")
    import importlib

    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ConfigError",
    "DataError",
    "ModelError",
    "OutputError",
    "RunConfig",
    "RunDirError",
    "TrainResult",
    "TrainingError",
    "TunelabError",
    "__version__",
    "create_app",
    "cross_validate",
    "evaluate",
    "export",
    "generate",
    "inspect_data",
    "load_config",
    "predict",
    "repeat_seeds",
    "search",
    "train",
]
