"""Frame sources: where the frames of a video come from, one module per kind."""
