#!/usr/bin/env python
"""Evaluate a checkpoint: pixAcc, mIoU, per-class IoU, confusion matrix.

`python -m gluon_deeplab.evaluate --help` lists the flags.
"""
import sys

from gluon_deeplab.evaluate import main

if __name__ == '__main__':
    sys.exit(main())
