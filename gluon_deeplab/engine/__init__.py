"""Training machinery: loss, poly schedule, precise BatchNorm statistics, checkpoints,
several devices and workers."""
