"""Deploy: the pieces of an export (the `tunelab export` workflow is `tunelab.workflows.export`).

Owns: magnitude pruning (`prune`), measuring an export against its run (`measure`: sizes,
speed, accuracy on the run's test split) and the model card written beside it (`card`).
May import: training, runs, tasks, inference, evaluation, methods, data, models, config and the
base modules; never workflows, serve or cli.
"""
