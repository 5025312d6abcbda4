"""Errors a user can cause, each printed by the CLI as one line (exit code 2).

    TunelabError          anything the user can fix: the CLI prints it, no traceback
    ├── ConfigError       a bad config value, an unknown key, a bad override
    ├── DataError         a missing/malformed file, a missing column, bad labels, an empty split
    ├── ModelError        a model source that cannot be found or loaded offline
    ├── RunDirError       a run directory that is missing or incomplete
    ├── OutputError       a place to write that cannot be written: read-only, a file, no space
    ├── TrainingError     training that cannot go on: the loss or gradients became NaN/inf
    └── WorkerError       a process of a multi-process run failed: its rank and cause

Internal bugs are not TunelabErrors and keep their traceback.
"""

from __future__ import annotations


class TunelabError(Exception):
    """Base class for user-fixable problems; the message says what is wrong and what to do."""


class ConfigError(TunelabError):
    """One or more problems in a config; `problems` holds each as its own line."""

    def __init__(self, problems: list[str] | str, source: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        if len(self.problems) == 1:
            message = f"config{where}: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{len(self.problems)} problems in config{where}:\n{lines}"
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:  # rebuilt from its parts (sent between ranks)
        return (type(self), (self.problems, self.source))


class DataError(TunelabError):
    """A data file or split that cannot be used as given."""


class ModelError(TunelabError):
    """A model source that cannot be resolved or loaded without a hub."""


class RunDirError(TunelabError):
    """A run directory that lacks what a command needs."""


class OutputError(TunelabError):
    """An output path the user named that cannot be created or written (see tunelab.files)."""


class TrainingError(TunelabError):
    """A run that diverged (non-finite loss, gradients or weights); nothing of it is kept as a result."""


class WorkerError(TunelabError):
    """A training process of a multi-process run failed; the message names its rank and cause.

    `user_error`: the process itself ended on a TunelabError (exit code 2), not a crash or a signal.
    """

    def __init__(self, message: str, user_error: bool = False) -> None:
        super().__init__(message)
        self.user_error = user_error

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.user_error))
