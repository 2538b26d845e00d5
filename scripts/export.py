#!/usr/bin/env python
"""Export a trained network to MXNet symbol/params and ONNX.

`python -m gluon_deeplab.export --help` lists the flags.
"""
import sys

from gluon_deeplab.export import main

if __name__ == '__main__':
    sys.exit(main())
