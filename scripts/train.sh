#!/bin/sh
# Two-phase DeepLabV3 training (Chen et al. 2017, Sec. 4), ASPP or Vortex Pooling head.
#   phase 1: output stride 16, BatchNorm trained, poly lr from LR1
#   phase 2: output stride 8, BatchNorm frozen (FREEZE2=1; 0 trains it), poly lr from
#            LR2, starts from phase 1
#   then: evaluation of phase 2 at output stride 8 (per-class IoU, confusion matrix)
# Defaults are the paper's PASCAL VOC recipe on VOCdevkit_aug/ (train_aug, crop 513,
# batch 16 then 8, 30K + 30K iterations, lr 0.007 then 0.001); evaluation is on val.
# Settings come from environment variables; arguments are passed to both phases and win:
#   sh scripts/train.sh --aspp_or_vortex 2          # Vortex Pooling instead of ASPP
#   DATASET=camvid DATA_DIR=data/camvid_sample CROP_SIZE=128 ITERS1=12 ITERS2=6 \
#     BATCH_SIZE=4 BATCH_SIZE2=4 GPUS= sh scripts/train.sh --head vortex
# An interrupted run continues with --resume RUN_DIR (or RUN_DIR/phase1, RUN_DIR/phase2):
# a finished phase is skipped, an interrupted one resumed, the rest run.
# DeepLabV3+ (Chen et al. 2018, Sec. 4: train at output stride 16, evaluate at 8):
#   ITERS2=0 sh scripts/train.sh --decoder_output_stride 4 [--backbone xception65]
# ITERS2=0 skips phase 2 and evaluates phase 1 at output stride 8.
set -eu

DATASET=${DATASET:-voc_aug}
DATA_DIR=${DATA_DIR:-VOCdevkit_aug}
HEAD=${HEAD:-1}                       # 1 = ASPP, 2 = Vortex Pooling (or a head name)
GPUS=${GPUS-0}                        # GPU ids ("0,1"); empty for the CPU
BATCH_SIZE=${BATCH_SIZE:-16}          # phase 1 global batch
BATCH_SIZE2=${BATCH_SIZE2:-8}         # phase 2 global batch
CROP_SIZE=${CROP_SIZE:-513}
ITERS1=${ITERS1:-30000}
ITERS2=${ITERS2:-30000}
LR1=${LR1:-0.007}
LR2=${LR2:-0.001}
FREEZE2=${FREEZE2:-1}                 # phase 2 BatchNorm: 1 frozen (the paper's), 0 trained
WEIGHT_DECAY=${WEIGHT_DECAY:-0.0001}
WORKERS=${WORKERS:-4}
# The backbone's ImageNet weights: "imagenet" (fetched and checked), a model-zoo .params
# file, or "none" (from scratch). Default: imagenet for voc_aug and cityscapes.
case $DATASET in voc_aug|cityscapes) PRETRAINED=${PRETRAINED:-imagenet} ;; esac
PRETRAINED=${PRETRAINED:-}
PYTHON=${PYTHON:-python}

# The head (any form train.py takes) names the run folder; Python reads the arguments.
settings=$($PYTHON -m gluon_deeplab.cli train_sh --aspp_or_vortex "$HEAD" "$@") || exit 2
eval "$settings"
if [ -n "$resume" ]; then
  case "${resume%/}" in
    */phase1|*/phase2) RUN_DIR=${RUN_DIR:-$(dirname "$resume")} ;;
    *) RUN_DIR=${RUN_DIR:-${resume%/}} ;;
  esac
fi
RUN_DIR=${RUN_DIR:-runs/${DATASET}_${head_name}}

# How phase folder $1 starts: "skip" (finished, when resuming), "resume" (an interrupted
# phase) or "new" (train.py refuses a folder that holds another run).
phase_start() {
  if [ -z "$resume" ]; then echo new
  elif [ -f "$1/final.params" ]; then echo skip
  elif ls "$1"/epoch_*.json >/dev/null 2>&1; then echo resume
  else echo new
  fi
}

common="--dataset $DATASET --data_dir $DATA_DIR --aspp_or_vortex $HEAD --gpus=$GPUS \
  --crop_size $CROP_SIZE --weight_decay $WEIGHT_DECAY --workers $WORKERS"

# run_phase N STRIDE FREEZE BATCH LR ITERS DESCRIPTION [train.py flags of this phase]
run_phase() {
  n=$1 stride=$2 freeze=$3 batch=$4 lr=$5 iters=$6 what=$7
  shift 7
  dir=$RUN_DIR/phase$n
  case $(phase_start "$dir") in
    skip) echo "== phase $n already finished: $dir/final.params"; return ;;
    resume) from=$dir ;;
    *) from=-1 ;;
  esac
  echo "== phase $n: output stride $stride, $what, $iters iterations -> $dir"
  # --resume last: it wins over one among the user's arguments
  # shellcheck disable=SC2086
  $PYTHON -m gluon_deeplab.train $common --phase "$n" --output_stride "$stride" \
    --freeze_batch_norm "$freeze" --batch_size "$batch" --initial_learning_rate "$lr" \
    --max_iter "$iters" --run_dir "$dir" "$@" --resume "$from"
}

run_phase 1 16 0 "$BATCH_SIZE" "$LR1" "$ITERS1" "BatchNorm trained" \
  ${PRETRAINED:+--pre_trained_model "$PRETRAINED"} "$@"
last=phase2
if [ "$ITERS2" -gt 0 ]; then
  run_phase 2 8 "$FREEZE2" "$BATCH_SIZE2" "$LR2" "$ITERS2" \
    "BatchNorm $([ "$FREEZE2" = 1 ] && echo frozen || echo trained)" \
    --init_checkpoint "$RUN_DIR/phase1/final.params" "$@"
else
  last=phase1
fi

echo "== evaluation of $RUN_DIR/$last/final.params at output stride 8"
$PYTHON -m gluon_deeplab.evaluate --checkpoint "$RUN_DIR/$last/final.params" \
  --output_stride 8 --gpus="$GPUS" --workers "$WORKERS" --no_progress
