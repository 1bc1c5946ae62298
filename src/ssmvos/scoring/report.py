"""Figures -> terminal table, JSON and CSV (files written atomically: temp file + rename)."""
from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from ..atomic import write_text_atomic
from ..errors import SSMVOSError
from .score import GLOBAL_KEYS, OBJECT_KEYS

#: Column titles of the official tool's CSV files, by figure name.
CSV_TITLES = {"JF_mean": "J&F-Mean", "J_mean": "J-Mean", "J_recall": "J-Recall", "J_decay": "J-Decay",
              "F_mean": "F-Mean", "F_recall": "F-Recall", "F_decay": "F-Decay"}


def _rows(scores: dict) -> list[tuple[str, dict[str, float]]]:
    """("Global", figures) then ("<video>_<id>", figures with JF_mean added) per object."""
    rows = [("Global", {k: scores[k] for k in GLOBAL_KEYS})]
    for name, obj in scores["per_object"].items():
        rows.append((name, {"JF_mean": (obj["J_mean"] + obj["F_mean"]) / 2, **obj}))
    return rows


#: The line above the table's header: the table is in percent, the files are not.
UNITS = "J&F, J and F figures in percent (JSON and CSV hold fractions; a decay may be negative)"


def format_table(scores: dict, per_object: bool = True) -> str:
    """A DAVIS-leaderboard-style table in percent (said in its first line): the global row,
    then one row per object."""
    rows = _rows(scores) if per_object else _rows(scores)[:1]
    width = max(len("Sequence"), *(len(name) for name, _ in rows))
    titles = [CSV_TITLES[k] for k in GLOBAL_KEYS]
    head = f"{'Sequence':<{width}}  " + "  ".join(f"{t:>8}" for t in titles)
    lines = [UNITS, head, "-" * len(head)]
    for i, (name, figures) in enumerate(rows):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{100 * figures[k]:>8.1f}" for k in GLOBAL_KEYS))
        if i == 0 and len(rows) > 1:
            lines.append("-" * len(head))
    return "\n".join(lines)


def _atomic_write(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; its folder must exist (a typo is not created)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise SSMVOSError(f"cannot write {path}: folder {folder} does not exist")
    return write_text_atomic(path, text)


def _json_ready(value):
    """Floats as they are, nan (possible for decays of very long videos) as null."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(scores: dict, path: str | os.PathLike) -> Path:
    """The figures as JSON: the global figures, ``per_object``, then (when the scores have
    them) ``per_video`` and ``format``. Values in [0, 1] (a decay may be negative); a nan figure is written as null."""
    ordered = {k: scores[k] for k in GLOBAL_KEYS}
    ordered["per_object"] = {name: {k: obj[k] for k in OBJECT_KEYS} for name, obj in scores["per_object"].items()}
    if "per_video" in scores:
        ordered["per_video"] = {name: {k: v[k] for k in GLOBAL_KEYS} for name, v in scores["per_video"].items()}
    if "format" in scores:
        ordered["format"] = scores["format"]
    return _atomic_write(path, json.dumps(_json_ready(ordered), indent=1) + "\n")


def write_csv(scores: dict, path: str | os.PathLike) -> Path:
    """One CSV: header ``Sequence,J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay``,
    a first row ``Global``, then one row per object ``<video>_<id>``; values in [0, 1] (a decay may be negative), 6 decimals.

    (The official tool writes two files: the global row, and ``Sequence,J-Mean,F-Mean`` per object.)
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["Sequence"] + [CSV_TITLES[k] for k in GLOBAL_KEYS])
    for name, figures in _rows(scores):
        writer.writerow([name] + [f"{figures[k]:.6f}" for k in GLOBAL_KEYS])
    return _atomic_write(path, buffer.getvalue())


__all__ = ["CSV_TITLES", "UNITS", "format_table", "write_json", "write_csv"]
