"""One place for user-facing output, so the CLI and the library print alike."""

from __future__ import annotations

from rich.console import Console

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def say(message: str) -> None:
    console.print(message, markup=False)
