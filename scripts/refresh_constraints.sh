#!/usr/bin/env bash
# Move the tested dependency set forward, with the test suite as the judge.
#
#   scripts/refresh_constraints.sh            # newest versions pyproject.toml's ranges allow
#
# 1. builds a fresh virtualenv in a temporary folder with no constraints, so pip resolves the
#    newest releases inside pyproject.toml's ranges (the upper bounds there are the newest
#    versions a green suite has seen);
# 2. runs `make test` in it: lint, mypy and the whole suite;
# 3. only when that is green, writes constraints.txt (to a temporary name, then renamed) and
#    prints what moved; a red suite leaves constraints.txt as it was and exits non-zero.
# It also lists releases newer than the upper bounds, so a person can raise a bound and rerun.
# .github/workflows/refresh-constraints.yml runs this weekly and proposes the change.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d "${TMPDIR:-/tmp}/tunelab-refresh.XXXXXX")"
trap 'rm -rf "$work"' EXIT
venv="$work/venv"
echo "fresh environment in $venv (no constraints)"
make test VENV="$venv" CONSTRAINTS=/dev/null
{
  echo "# The dependency set \`make demo\` and \`make test\` install (pip -c constraints.txt)."
  echo "# Written by scripts/refresh_constraints.sh after \`make test\` passed with exactly these"
  echo "# versions, on $(date -u +%Y-%m-%d), Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())')."
  echo "# torch is left out: the Makefile installs torch==2.13.0 first (the local CPU wheel)."
  "$venv/bin/python" -m pip freeze --exclude-editable --disable-pip-version-check \
    | grep -viE '^(torch|tunelab)[ =@]'
} > constraints.txt.tmp
if [ -f constraints.txt ]; then
  diff <(grep -v '^#' constraints.txt) <(grep -v '^#' constraints.txt.tmp) || true
fi
mv constraints.txt.tmp constraints.txt
echo "constraints.txt updated; releases newer than pyproject.toml's upper bounds:"
"$venv/bin/python" -m pip list --outdated --disable-pip-version-check 2>/dev/null \
  | grep -iE '^(transformers|peft|trl|accelerate|datasets|tokenizers|huggingface.hub|openai|optuna|ray|fastapi|uvicorn|starlette|pydantic) ' || echo "  none"
