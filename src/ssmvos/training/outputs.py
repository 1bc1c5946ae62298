"""The run folder, as the original lays it out: args.json, logs/train.log, board/, checkpoints/."""
from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: The original's log line format and date format.
LOG_FORMAT = "[%(asctime)s %(filename)s#%(lineno)3d] %(message)s"
DATE_FORMAT = "%Y/%m/%d %H:%M:%S"
LOGGER_NAME = "ssmvos.train"


def run_paths(model_dir: str | os.PathLike) -> dict[str, Path]:
    """The files and folders of a run under ``model_dir``."""
    root = Path(model_dir)
    return {"root": root, "args": root / "args.json", "log": root / "logs" / "train.log",
            "board": root / "board", "checkpoints": root / "checkpoints"}


def checkpoint_path(model_dir: str | os.PathLike, global_step: int) -> Path:
    """``<model_dir>/checkpoints/<global_step>.pt``, the original's name."""
    return run_paths(model_dir)["checkpoints"] / f"{global_step}.pt"


@contextmanager
def train_logger(log_file: Path | None, verbose: bool) -> Iterator[logging.Logger]:
    """A logger writing the original's line format to stderr and (rank 0) to ``log_file``.

    ``verbose`` False (ranks other than 0) keeps only warnings. Handlers are removed on exit.
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False
    formatter = logging.Formatter(LOG_FORMAT, datefmt=DATE_FORMAT)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    for h in handlers:
        h.setFormatter(formatter)
        logger.addHandler(h)
    try:
        yield logger
    finally:
        for h in handlers:
            logger.removeHandler(h)
            h.close()
