#!/usr/bin/env bash
# The whole test suite: unit, property and integration tests over loopback, plus the official
# OpenAI and Anthropic Python SDKs as real clients of the gateway.
#
# Sets up what the tests need on a fresh machine:
#   - a Python virtualenv in .venv with the `openai` and `anthropic` SDKs (from PyPI)
# Tests that need a missing tool say so loudly and skip; under CI=true they fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating $venv with the openai and anthropic SDKs"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import openai, anthropic' 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-sdk.txt
fi
export UNDERSTUDY_PYTHON="$PWD/$venv/bin/python"

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
