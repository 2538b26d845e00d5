#!/usr/bin/env python
"""Predict label maps and overlays for images.

`python -m gluon_deeplab.predict --help` lists the flags.
"""
import sys

from gluon_deeplab.predict import main

if __name__ == '__main__':
    sys.exit(main())
