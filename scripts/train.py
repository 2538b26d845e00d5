#!/usr/bin/env python
"""Train one phase of DeepLabV3 (see scripts/train.sh for both).

`python -m gluon_deeplab.train --help` lists the flags.
"""
import sys

from gluon_deeplab.train import main

if __name__ == '__main__':
    sys.exit(main())
