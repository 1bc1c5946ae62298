"""Inference: the per-video engine, the video predictor API, merging per-object masks."""
