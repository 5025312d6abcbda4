"""Inference: scoring and generating with a model already in memory.

Owns: `Predictor` (length-sorted batch scoring of a classifier), `Generator` (prompted text
generation), the decoding settings shared with training (`generation`), and the two exported
inference formats, int8 dynamic quantization and ONNX (each writes and reads its own files).
May import: evaluation, methods, data, models, config and the base modules. Loading a run from
disk is `tunelab.runs` (above tasks), not here.
"""
