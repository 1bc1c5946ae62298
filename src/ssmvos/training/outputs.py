"""The run folder, as the original lays it out: args.json, logs/train.log, board/, checkpoints/."""
from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..atomic import is_temporary, make_dirs, write_error, writing
from ..errors import SSMVOSError
from ..numbers import is_number

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


def existing_checkpoints(model_dir: str | os.PathLike) -> dict[int, Path]:
    """The checkpoints a run folder holds: global step -> ``checkpoints/<step>.pt`` (temporary
    files of a killed save are not checkpoints)."""
    folder = run_paths(model_dir)["checkpoints"]
    if not folder.is_dir():
        return {}
    return {int(p.stem): p for p in folder.glob("*.pt") if is_number(p.stem) and not is_temporary(p.name)}


def check_run_folder(model_dir: str | os.PathLike, resumed_step: int | None) -> None:
    """Refuse to train into a folder whose checkpoints the run would replace.

    A folder holding checkpoints is accepted only to continue it: ``resumed_step`` (the step
    of the ``--resume --resume-step`` checkpoint, None otherwise) must be at least its last
    step. Raises SSMVOSError saying how to continue or where else to go.
    """
    existing = existing_checkpoints(model_dir)
    if not existing:
        return
    last = max(existing)
    if resumed_step is None:
        raise SSMVOSError(f"--model-dir {model_dir} already holds a run (checkpoints up to step {last}); continue it "
                          f"with --resume {existing[last]} --resume-step, or choose another --model-dir")
    later = sorted(step for step in existing if step > resumed_step)
    if later:
        raise SSMVOSError(f"--model-dir {model_dir} holds checkpoints after step {resumed_step} "
                          f"({', '.join(f'{s}.pt' for s in later[:4])}{', ...' if len(later) > 4 else ''}) that this "
                          f"run would overwrite; resume from {existing[last]}, or choose another --model-dir")


class _LogFile(logging.FileHandler):
    """The run's log file: a failed write (disk full, ...) stops the run with one clear line
    instead of logging's printed traceback."""

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            raise write_error(self.baseFilename, exc) from None
        super().handleError(record)


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
        make_dirs(log_file.parent)
        with writing(log_file):
            handlers.append(_LogFile(log_file))
    for h in handlers:
        h.setFormatter(formatter)
        logger.addHandler(h)
    try:
        yield logger
    finally:
        for h in handlers:
            logger.removeHandler(h)
            h.close()
