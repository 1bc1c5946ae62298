"""Building what runs the network, in one place: weights + input size + runtime spec -> a
video predictor (``ssmvos segment``, ``ssmvos app``, the Python API), an engine (``ssmvos
evaluate``) or a network (``ssmvos export``).

    predictor = build_predictor("davis17", input_size=512, runtime=RuntimeSpec(device="cuda", precision="bf16"))

Each step has one owner: the published models' facts are their cards
(:data:`PRETRAINED`, :mod:`ssmvos.pretrained`); checking the input size, resolving the
weights (downloading a published model once) and loading the checkpoint strictly is
:func:`load_model` (:mod:`ssmvos.weights`); the runner is :func:`ssmvos.runtime.build_runner`'s
from a :class:`~ssmvos.runtime.RuntimeSpec`; the engine around it is
:meth:`Engine.for_model <ssmvos.inference.engine.Engine.for_model>`'s.
"""
from __future__ import annotations

import os
from typing import Any

from .inference.engine import Engine
from .inference.predictor import VideoPredictor
from .pretrained import PRETRAINED, PretrainedCard, input_size_for
from .runtime import RuntimeSpec
from .weights import load_model

__all__ = ["PRETRAINED", "PretrainedCard", "RuntimeSpec", "build_engine", "build_predictor", "load_model"]


def build_predictor(weights: str | os.PathLike = "davis17", input_size: int | tuple[int, int] | None = None,
                    runtime: RuntimeSpec | None = None, *, size_source: str = "input_size",
                    **options: Any) -> VideoPredictor:
    """A :class:`~ssmvos.inference.predictor.VideoPredictor` for a published model name or
    a checkpoint path, at ``input_size`` (default: the model's, 512), run as ``runtime``
    asks (default: torch, fp32, device 'auto'). ``options``: margin, max_batch, lookahead.
    Errors name ``size_source`` as what set the size (a command passes its flags)."""
    size = input_size_for(input_size, weights)
    model = load_model(weights, input_size=size, size_source=size_source)
    return VideoPredictor(engine=build_engine(model, size, runtime, size_source=size_source, **options))


def build_engine(weights: Any = "davis17", input_size: int | tuple[int, int] | None = None,
                 runtime: RuntimeSpec | None = None, *, encoder: str | None = None, matching: str | None = None,
                 keep_topk: int | None = None, size_source: str = "input_size", **options: Any) -> Engine:
    """An :class:`~ssmvos.inference.engine.Engine` for a model (an ``SSM``), a published
    name or a checkpoint path (loaded with encoder/matching/keep_topk, which may only repeat
    what a checkpoint records). ``options``: margin, max_batch, lookahead, device_geometry."""
    from .model import SSM

    size = input_size_for(input_size, weights)
    model = weights if isinstance(weights, SSM) else load_model(
        weights, input_size=size, encoder=encoder, matching=matching, keep_topk=keep_topk, size_source=size_source)
    return Engine.for_model(model, size, runtime, size_source=size_source, **options)
