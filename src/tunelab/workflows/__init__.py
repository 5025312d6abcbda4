"""Workflows: one module per command, each a short list of named steps.

check (config validate), train, evaluate, predict, generate, inspect (data inspect), repeats
(train --seeds, cv), search (Optuna; search_ray for the Ray Tune backend), export (with
recover, fine-tuning after pruning).
Owns: the order of the steps. May import: deploy, report, training, runs, tasks, inference,
evaluation, methods, data, models, config and the base modules; never cli or serve.
Import the module of the command you need (`from tunelab.workflows.train import train`):
this package imports none of them, so loading one does not load the others.
"""
