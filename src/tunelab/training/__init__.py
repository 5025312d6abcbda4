"""Training: the HF Trainer configured from a RunConfig, and what tunelab adds to it.

Owns: the Trainer and its mixins (`trainer`: finite-loss checks, completed checkpoints, length
buckets, exact resume), callbacks (progress, divergence guards), the optimizer with
discriminative learning rates, memory estimates and measurement, and experiment tracking.
May import: runs, tasks, inference, evaluation, methods, data, models, config and the base
modules; never deploy, report, workflows, serve or cli.
"""
