#!/bin/sh
# Set up .venv (CPU MXNet) and run the two-phase schedule on the CamVid sample shipped in
# data/camvid_sample (24 train / 8 val images, 240x180): a few minutes on 2 CPU cores,
# validation pixAcc / mIoU printed after every epoch. The small ResNet18-v2 backbone and
# precise BatchNorm statistics (6 batches, before each validation and before phase 2)
# are what lets 48 iterations from random initialisation show the loss fall and mIoU rise. Arguments go to scripts/train.sh,
# e.g. `sh scripts/quickstart.sh --aspp_or_vortex 2` for Vortex Pooling.
set -eu
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[cpu]"
DATASET=camvid DATA_DIR=data/camvid_sample CROP_SIZE=128 BATCH_SIZE=4 BATCH_SIZE2=4 \
  ITERS1=48 ITERS2=6 LR1=0.01 LR2=0.001 GPUS= WORKERS=1 RUN_DIR=${RUN_DIR:-runs/quickstart} \
  PYTHON=.venv/bin/python sh scripts/train.sh --backbone resnet18_v2 --multi_grid 1,2 \
  --precise_bn 6 --no_progress "$@"
