#!/usr/bin/env python
"""Start a training job on MXNet's parameter server (dist_sync): scheduler, servers and
workers, on this machine (-n N) or on the hosts of a host file (-H).

`python scripts/launch_dist.py --help` lists the options; see README "Scaling out".
"""
import sys

from gluon_deeplab.launch import main

if __name__ == '__main__':
    sys.exit(main())
