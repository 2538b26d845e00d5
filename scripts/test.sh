#!/bin/sh
# Set up a virtual environment in .venv (CPU MXNet + test tools) and run the test suite.
set -eu
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[cpu,test]"
# onnxruntime (ONNX round-trip test) declares numpy>=1.24.2 on Python 3.11, which MXNet
# 1.9.1 cannot import with; it runs with numpy 1.23.5, so install it without that pin.
.venv/bin/python -m pip install -q --no-deps onnxruntime==1.16.3 coloredlogs humanfriendly \
  flatbuffers sympy mpmath
.venv/bin/python -m pytest -q tests "$@"
