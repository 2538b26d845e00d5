"""Deployment: BatchNorm folding and oneDNN fusion, INT8 quantization."""
