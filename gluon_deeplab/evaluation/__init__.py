"""Scoring: the confusion-matrix metrics and multi-scale / sliding-window inference."""
