"""Exporting the network for other runtimes (``ssmvos export``): :mod:`.onnx`."""
