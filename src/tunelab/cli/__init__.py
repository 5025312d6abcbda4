"""The command line: `tunelab <command>` parses its arguments, calls one workflow, renders.

Owns: argument parsing (`app`), rendering (`render`), turning a TunelabError into one line and
exit code 2. May import everything below it; nothing imports it.
"""

from tunelab.cli.app import app, main

__all__ = ["app", "main"]
