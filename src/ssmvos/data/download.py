"""Fetching the DAVIS archives and unpacking them into the folders the tools expect.

``download_dataset("davis2017", root="datasets")`` downloads
``DAVIS-2017-trainval-480p.zip`` into ``datasets/.downloads/`` (resumable), checks it
is an intact zip, unpacks it into a temporary folder inside ``datasets/``, checks that
``JPEGImages``, ``Annotations`` and ``ImageSets`` are there and only then renames the
dataset folder to ``datasets/DAVIS2017``. A corrupt archive or a missing folder raises
SSMVOSError and leaves nothing behind. YouTube-VOS cannot be fetched automatically
(it needs a CodaLab registration): :data:`YOUTUBE_INSTRUCTIONS` says where to get it.

``$SSMVOS_DATA_URL`` (read at call time) replaces the servers' addresses by a base URL
the archive file names are appended to (a mirror, or a local server in tests).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import NamedTuple
from urllib.parse import urlparse

from ..download import download
from ..errors import SSMVOSError

DATA_URL_ENV = "SSMVOS_DATA_URL"

#: Sub-folders a DAVIS-style dataset folder must hold.
REQUIRED = ("JPEGImages", "Annotations", "ImageSets")


class DatasetSource(NamedTuple):
    """Where an archive comes from and the folder (inside the root) it unpacks to."""

    url: str
    folder: str


DATASETS: dict[str, DatasetSource] = {
    "davis2016": DatasetSource("https://graphics.ethz.ch/Downloads/Data/Davis/DAVIS-data.zip", "DAVIS2016"),
    "davis2017": DatasetSource("https://data.vision.ee.ethz.ch/csergi/share/davis/DAVIS-2017-trainval-480p.zip",
                               "DAVIS2017"),
    "davis2017-test": DatasetSource("https://data.vision.ee.ethz.ch/csergi/share/davis/DAVIS-2017-test-dev-480p.zip",
                                    "DAVIS2017_test"),
}

YOUTUBE_FOLDER = "YouTubeVOS"

YOUTUBE_INSTRUCTIONS = """\
YouTube-VOS 2018 cannot be downloaded automatically: its files are shared through the
CodaLab competition, which needs a (free) registration.
  1. Open https://youtube-vos.org/dataset/vos/ and follow the link to the CodaLab
     competition; register and accept the terms.
  2. Download the 2018 train.zip and valid.zip.
  3. Unpack them so that the folders read
       {root}/train/JPEGImages/<video>/<frame>.jpg
       {root}/train/Annotations/<video>/<frame>.png
       {root}/train/meta.json
       {root}/valid/JPEGImages/<video>/<frame>.jpg
       {root}/valid/Annotations/<video>/<frame>.png
       {root}/valid/meta.json
  4. Index them with: ssmvos index --youtube {root} --out-dir <folder>"""


def default_dataset_roots(root: str | os.PathLike = "datasets") -> dict[str, Path]:
    """The folders ``download-data`` unpacks to (and ``index`` looks in by default).

    Keys: ``davis2016``, ``davis2017``, ``davis2017_test``, ``youtube``.
    """
    root = Path(root)
    return {
        "davis2016": root / DATASETS["davis2016"].folder,
        "davis2017": root / DATASETS["davis2017"].folder,
        "davis2017_test": root / DATASETS["davis2017-test"].folder,
        "youtube": root / YOUTUBE_FOLDER,
    }


def youtube_instructions(root: str | os.PathLike = "datasets") -> str:
    """Where to get YouTube-VOS and where to put it (several lines)."""
    return YOUTUBE_INSTRUCTIONS.format(root=Path(root) / YOUTUBE_FOLDER)


def _source(name: str) -> DatasetSource:
    key = name.replace("_", "-")
    if key == "youtube":
        raise SSMVOSError("YouTube-VOS cannot be downloaded automatically (it needs a CodaLab registration); "
                          "run `ssmvos download-data youtube` for instructions")
    if key not in DATASETS:
        raise SSMVOSError(f"unknown dataset {name!r}; choose one of {', '.join([*DATASETS, 'youtube'])}")
    return DATASETS[key]


def dataset_url(name: str, base_url: str | None = None) -> str:
    """The archive's address: ``base_url`` (or ``$SSMVOS_DATA_URL``) + its file name, else the official one."""
    src = _source(name)
    base = base_url or os.environ.get(DATA_URL_ENV)
    if base:
        return f"{base.rstrip('/')}/{PurePosixPath(urlparse(src.url).path).name}"
    return src.url


def missing_folders(folder: str | os.PathLike) -> list[str]:
    """Which of JPEGImages, Annotations, ImageSets ``folder`` lacks (all, if it is no folder)."""
    folder = Path(folder)
    return [name for name in REQUIRED if not (folder / name).is_dir()]


def _find_dataset_folder(top: Path) -> Path | None:
    """The folder under ``top`` (itself, a child or a grandchild) holding the required folders."""
    level = [top]
    for _ in range(3):
        for folder in level:
            if not missing_folders(folder):
                return folder
        level = sorted(c for f in level for c in f.iterdir() if c.is_dir() and c.name != "__MACOSX")
    return None


def _check_zip(archive: Path, url: str) -> None:
    """Raise SSMVOSError (after deleting the file) unless ``archive`` is an intact zip."""
    problem = None
    if not zipfile.is_zipfile(archive):
        problem = "it is not a zip archive"
    else:
        try:
            with zipfile.ZipFile(archive) as zf:
                bad = zf.testzip()
            if bad is not None:
                problem = f"{bad} inside it is corrupt"
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            problem = f"it cannot be read as a zip archive ({exc})"
    if problem:
        archive.unlink(missing_ok=True)
        raise SSMVOSError(f"the file downloaded from {url} is damaged: {problem}; it was deleted, "
                          f"run the command again to download it anew")


def _say(message: str, progress: bool) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def download_dataset(name: str, root: str | os.PathLike = "datasets", base_url: str | None = None,
                     progress: bool = True, *, force: bool = False, keep_archive: bool = False) -> Path:
    """Download and unpack the dataset ``name`` (davis2016, davis2017, davis2017-test) into
    ``<root>/<folder>`` (DAVIS2016, DAVIS2017, DAVIS2017_test); returns that folder.

    A folder that is already complete is kept as it is (``force`` downloads and replaces
    it). The archive is deleted after unpacking unless ``keep_archive``; an interrupted
    download stays as ``<root>/.downloads/<file>.part`` and is resumed next time.
    """
    src = _source(name)
    root = Path(root)
    target = root / src.folder
    url = dataset_url(name, base_url)
    if target.exists() and not force:
        lacking = missing_folders(target)
        if not lacking:
            _say(f"{target} already holds {name}; nothing to do (use --force to download it again)", progress)
            return target
        raise SSMVOSError(f"{target} exists but lacks {', '.join(lacking)}; remove it or use --force to replace it")

    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SSMVOSError(f"cannot create the folder {root}: {exc.strerror or exc}") from None
    downloads = root / ".downloads"
    archive = downloads / PurePosixPath(urlparse(src.url).path).name
    hint = (f"check your internet connection, or download {src.url} by hand, unzip it and "
            f"rename the DAVIS folder inside to {target}")
    if force or not archive.is_file():
        try:
            download(url, archive, progress=progress, resume=True, hint=hint)
        except BaseException:
            _remove_if_empty(downloads)  # a partial download stays (and so does its folder)
            raise
    else:
        _say(f"using the archive downloaded before: {archive}", progress)
    try:
        _check_zip(archive, url)
    except SSMVOSError:
        _remove_if_empty(downloads)
        raise

    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{src.folder}.unpack-", dir=root))
    except OSError as exc:
        raise SSMVOSError(f"cannot create a folder in {root}: {exc.strerror or exc}") from None
    old = None
    try:
        _say(f"unpacking {archive.name} into {root}", progress)
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(staging)
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise SSMVOSError(f"cannot unpack {archive} into {root}: {getattr(exc, 'strerror', None) or exc}") from None
        found = _find_dataset_folder(staging)
        if found is None:
            archive.unlink(missing_ok=True)
            _remove_if_empty(downloads)
            lacking = missing_folders(_best_guess(staging))
            raise SSMVOSError(f"the archive from {url} has no {' or '.join(lacking)} folder beside the others "
                              f"({', '.join(REQUIRED)} are all needed); nothing was unpacked and the archive "
                              f"was deleted")
        if target.exists():  # force: keep the old folder until the new one is in place
            old = target.with_name(f".{target.name}.old-{staging.name.rsplit('-', 1)[-1]}")
            os.rename(target, old)
        os.rename(found, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None:
            if target.exists():
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(old, target)
    if not keep_archive:
        archive.unlink(missing_ok=True)
        _remove_if_empty(downloads)
    return target


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # absent, or other files are still there


def _best_guess(staging: Path) -> Path:
    """The unpacked folder that comes closest to a dataset (for the error message)."""
    candidates = [staging, *(c for c in staging.iterdir() if c.is_dir())]
    candidates += [g for c in candidates[1:] for g in c.iterdir() if g.is_dir()]
    return min(candidates, key=lambda c: len(missing_folders(c)))


__all__ = [
    "DATASETS",
    "DatasetSource",
    "YOUTUBE_INSTRUCTIONS",
    "dataset_url",
    "default_dataset_roots",
    "download_dataset",
    "missing_folders",
    "youtube_instructions",
]
