#!/bin/sh
# CamVid from random initialisation on a CPU: scripts/train.sh with a schedule that fits
# a 2-core machine (README, Results). ResNet18-v2 backbone (multi-grid 1,2), crop 225 of
# images randomly scaled 0.5-1.5, batch 8, SGD lr 0.01 poly 0.9, SegNet's median frequency
# class weights, precise BatchNorm statistics (20 batches) before each validation, each
# head's own atrous rates at output stride 8 (ASPP doubles them, Vortex keeps 3/9/27):
#   phase 1: 1800 iterations (40 epochs), output stride 16, BatchNorm trained
#   phase 2: 135 iterations (3 epochs), output stride 8, BatchNorm trained, lr 0.001
#   then: evaluation at output stride 8 on the 101 val images at 480x360
# Crop 225 = 14 x 16 + 1 (TF deeplab's 513 = 32 x 16 + 1): the logits' upsampling puts every
# feature on its own pixel, in training and in the aligned evaluation.
# Phase 2 trains BatchNorm, unlike the paper's: the paper freezes it because a GPU holds
# only a small batch at output stride 8, while here the batch stays phase 1's 8; and a
# network trained from scratch, frozen at stride 8 with statistics of stride 16, loses the
# normalisation its weights rely on and ends phase 2 below phase 1 (README, Results).
# Arguments go to scripts/train.sh and win, e.g.
#   sh scripts/train_camvid.sh --aspp_or_vortex 2
#   sh scripts/train_camvid.sh --resume runs/camvid_aspp    # continue an interrupted run
# DATA_DIR (default ../shared/data/camvid), CROP_SIZE, ITERS1, ITERS2, FREEZE2, RUN_DIR and
# PYTHON are read as train.sh does (CROP_SIZE=224 ... --contract_dilation 0, and
# --rates_at_os8 doubled for Vortex: the runs of docs/training.md made before those
# defaults).
set -eu
cd "$(dirname "$0")/.."
DATASET=camvid DATA_DIR=${DATA_DIR:-../shared/data/camvid} CROP_SIZE=${CROP_SIZE:-225} \
  BATCH_SIZE=8 BATCH_SIZE2=8 ITERS1=${ITERS1:-1800} ITERS2=${ITERS2:-135} LR1=0.01 LR2=0.001 \
  FREEZE2=${FREEZE2:-0} GPUS= WORKERS=1 \
  sh scripts/train.sh --backbone resnet18_v2 --multi_grid 1,2 --scale_range 0.5,1.5 \
  --class_weights median_freq --precise_bn 20 --no_progress "$@"
