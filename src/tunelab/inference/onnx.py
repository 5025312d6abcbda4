"""ONNX export of a classifier through torch.onnx's exporter, run and int8-quantized by ONNX Runtime.

The dynamo-based exporter (torch.export) is used because the TorchScript tracer bakes the
padding-mask branches of transformers 5 into the graph: its export differed by 3.1 in a logit
on a padded batch of the demo model, the dynamo export by 7e-7.
"""

from __future__ import annotations

import inspect
import logging
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunelab.errors import ModelError

ONNX_FILE = "model.onnx"


def export_classifier(model: Any, example: dict[str, torch.Tensor], path: Path) -> None:
    """Write `model` (a sequence classifier, fp32) as ONNX with dynamic batch and sequence axes.

    `example` must hold at least two texts of different lengths so neither axis is specialised.
    """
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    accepted = inspect.signature(model.forward).parameters
    example = {k: v for k, v in example.items() if k in accepted}  # e.g. token_type_ids for Llama
    names = list(example)
    model = model.float().eval()
    use_cache = getattr(model.config, "use_cache", None)
    model.config.use_cache = False  # decoders would return a KV cache, which torch.export refuses
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # e.g. "torchvision is not installed": true and irrelevant here
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # the exporter's deprecation chatter, not the user's business
            program = torch.onnx.export(
                model,
                (),
                kwargs=dict(example),
                input_names=names,
                output_names=["logits"],
                dynamic_shapes={name: {0: batch, 1: sequence} for name in names},
                dynamo=True,
                optimize=True,
                verbose=False,
                report=False,
            )
    except Exception as exc:  # the exporter raises many kinds; all mean the same to the user
        root = exc.__cause__ or exc  # the exporter wraps the real failure in a step-by-step guide
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(root)).strip()
        first = text.splitlines()[0] if text else type(root).__name__
        raise ModelError(
            f"{type(model).__name__} cannot be exported to ONNX here: {first}. Use --format hf or merged."
        ) from None
    finally:
        quiet.setLevel(level)
        model.config.use_cache = use_cache
    assert program is not None
    program.save(str(path))


def quantize_int8(source: Path, target: Path) -> None:
    """ONNX Runtime dynamic quantization: int8 MatMul weights, activations quantized per batch."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # ORT logs a pre-processing hint on the root logger every call
    try:
        quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)


class OnnxClassifier:
    """An ONNX Runtime session with the call shape the Predictor uses: token arrays in, logits out."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.num_labels = int(self.session.get_outputs()[0].shape[-1])

    def logits(self, batch: dict[str, Any]) -> np.ndarray:
        feed = {name: np.asarray(batch[name], dtype=np.int64) for name in self.input_names}
        return np.asarray(self.session.run(["logits"], feed)[0], dtype=np.float32)
