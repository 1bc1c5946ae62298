"""Fetching the DAVIS archives and unpacking them into the folders the tools expect.

``download_dataset("davis2017", root="datasets")`` downloads
``DAVIS-2017-trainval-480p.zip`` into ``datasets/.downloads/`` (resumable), checks it
is an intact zip, unpacks it into a temporary folder inside ``datasets/``, checks that
``JPEGImages``, ``Annotations`` and ``ImageSets`` are there and only then renames the
dataset folder to ``datasets/DAVIS2017``. A corrupt archive or a missing folder raises
SSMVOSError and leaves nothing behind. Which datasets have archives, and where they come
from, is :mod:`ssmvos.data.datasets`'s; YouTube-VOS cannot be fetched automatically (it
needs a CodaLab registration): its entry's instructions say where to get it.

``$SSMVOS_DATA_URL`` (read at call time) replaces the servers' addresses by a base URL
the archive file names are appended to (a mirror, or a local server in tests).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

from ..atomic import check_output_folder, default_dir_mode, make_dirs, os_error_reason
from ..fetch import download, file_name, mirrored
from ..errors import SSMVOSError
from .datasets import DatasetInfo, dataset

#: The sub-folders of a DAVIS-layout dataset folder.
DAVIS_FOLDERS = ("JPEGImages", "Annotations", "ImageSets")

DATA_URL_ENV = "SSMVOS_DATA_URL"

def manual_instructions(name: str, root: str | os.PathLike = "datasets") -> str:
    """Where to get a dataset that cannot be fetched automatically, and where to put it."""
    info = dataset(name)
    if info.instructions is None:
        raise SSMVOSError(f"{info.title} is downloaded by `ssmvos download-data {info.key}`")
    return info.instructions.format(root=Path(root) / info.folder, key=info.key.replace("_", "-"))


def _source(name: str) -> DatasetInfo:
    info = dataset(name)
    if info.archive_url is None:
        raise SSMVOSError(f"{info.title} cannot be downloaded automatically; run `ssmvos download-data {info.key}` "
                          "for instructions")
    return info


def dataset_url(name: str, base_url: str | None = None) -> str:
    """The archive's address: ``base_url`` (or ``$SSMVOS_DATA_URL``) + its file name, else the official one."""
    return mirrored(_source(name).archive_url, DATA_URL_ENV, base_url)


def missing_folders(folder: str | os.PathLike, required: tuple[str, ...] = DAVIS_FOLDERS) -> list[str]:
    """Which of ``required`` (default JPEGImages, Annotations, ImageSets) ``folder`` lacks
    (all, if it is no folder)."""
    folder = Path(folder)
    return [name for name in required if not (folder / name).is_dir()]


def _find_dataset_folder(top: Path, required: tuple[str, ...]) -> Path | None:
    """The folder under ``top`` (itself, a child or a grandchild) holding the required folders."""
    level = [top]
    for _ in range(3):
        for folder in level:
            if not missing_folders(folder, required):
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
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, zlib.error) as exc:
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
    """Download and unpack the dataset ``name`` (a key of ``data.datasets.DATASETS`` with an
    archive: davis2016, davis2017, davis2017_test) into ``<root>/<folder>`` (DAVIS2016,
    DAVIS2017, DAVIS2017_test); returns that folder.

    A folder that is already complete is kept as it is (``force`` downloads and replaces
    it). The archive is deleted after unpacking unless ``keep_archive``; an interrupted
    download stays as ``<root>/.downloads/<file>.part`` and is resumed next time.
    """
    src = _source(name)
    required = src.required_folders
    root = Path(root)
    target = root / src.folder
    url = dataset_url(name, base_url)
    if target.exists() and not force:
        lacking = missing_folders(target, required)
        if not lacking:
            _say(f"{target} already holds {name}; nothing to do (use --force to download it again)", progress)
            return target
        raise SSMVOSError(f"{target} exists but lacks {', '.join(lacking)}; remove it or use --force to replace it")

    check_output_folder(root, "dataset root")
    created = not root.exists()
    make_dirs(root)
    downloads = root / ".downloads"
    archive = downloads / file_name(src.archive_url)
    hint = (f"check your internet connection, or download {src.archive_url} by hand, unzip it and "
            f"rename the DAVIS folder inside to {target}")
    try:
        if force or not archive.is_file():
            download(url, archive, progress=progress, resume=True, hint=hint)
        else:
            _say(f"using the archive downloaded before: {archive}", progress)
        _check_zip(archive, url)
    except BaseException:
        _remove_if_empty(downloads)  # a partial download stays (and so do its folders)
        if created:
            _remove_if_empty(root)  # a --root this run made, and nothing in it
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
        except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise SSMVOSError(f"cannot unpack {archive} into {root}: "
                              f"{os_error_reason(exc) if isinstance(exc, OSError) else exc}") from None
        found = _find_dataset_folder(staging, required)
        if found is None:
            archive.unlink(missing_ok=True)
            _remove_if_empty(downloads)
            lacking = missing_folders(_best_guess(staging, required), required)
            raise SSMVOSError(f"the archive from {url} has no {' or '.join(lacking)} folder beside the others "
                              f"({', '.join(required)} are all needed); nothing was unpacked and the archive "
                              f"was deleted")
        if target.exists():  # force: keep the old folder until the new one is in place
            old = target.with_name(f".{target.name}.old-{staging.name.rsplit('-', 1)[-1]}")
            os.rename(target, old)
        os.rename(found, target)
        os.chmod(target, default_dir_mode())  # the staging folder was made 0700 by mkdtemp
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


def _best_guess(staging: Path, required: tuple[str, ...]) -> Path:
    """The unpacked folder that comes closest to a dataset (for the error message)."""
    candidates = [staging, *(c for c in staging.iterdir() if c.is_dir())]
    candidates += [g for c in candidates[1:] for g in c.iterdir() if g.is_dir()]
    return min(candidates, key=lambda c: len(missing_folders(c, required)))


__all__ = ["dataset_url", "download_dataset", "manual_instructions", "missing_folders"]
