#!/bin/sh
# Set up a virtual environment in .venv (CPU MXNet + test tools) and run the test suite.
set -eu
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[cpu,test]"
.venv/bin/python -m pytest -q tests "$@"
