"""One place for user-facing output, so the CLI and the library print alike."""

from __future__ import annotations

import os

from rich.console import Console

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def say(message: str) -> None:
    """Progress for the user; in a multi-process run only rank 0 speaks (RANK from torchrun)."""
    if os.environ.get("RANK", "0") not in ("0", ""):
        return
    console.print(message, markup=False)
