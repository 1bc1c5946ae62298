"""The datasets ssmvos knows: one entry each, read by every command that deals with datasets.

An entry gives the dataset's key (its one spelling: ``--<key>`` flags with dashes, split
files ``<split>.json``), its default folder under ``datasets/``, where its archive comes
from, its split lists, the function that indexes a split, and how its annotations are
scored. ``ssmvos index`` (flags, default folders), ``ssmvos download-data`` and
``ssmvos evaluate --score`` take everything from here.

Adding a dataset: write its indexer (``(root, split, notes) -> list[FrameEntry]``, see
:mod:`ssmvos.data.index`) and add one :class:`DatasetInfo` to :data:`DATASETS`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import SSMVOSError
from .index import index_davis2016, index_davis2017, index_youtube
from .splits import FrameEntry, write_split

Notes = Callable[[str], None]

#: What to do when no dataset is found.
DOWNLOAD_HINT = ("download one with `ssmvos download-data davis2017` (or davis2016, davis2017_test; "
                 "`download-data youtube` explains how to get YouTube-VOS)")
Indexer = Callable[[Path, str, "Notes | None"], list[FrameEntry]]

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


VOS_LAYOUT_INSTRUCTIONS = """\
{name} cannot be downloaded automatically.
  1. Download {where}.
  2. Unpack them so that the folders read
       {{root}}/train/JPEGImages/<video>/<frame>.jpg
       {{root}}/train/Annotations/<video>/<frame>.png
       {{root}}/valid/JPEGImages/<video>/<frame>.jpg
       {{root}}/valid/Annotations/<video>/<frame>.png
{meta}  3. Index them with: ssmvos index --{{key}} {{root}} --out-dir <folder>"""


@dataclass(frozen=True)
class SplitInfo:
    """One split of a dataset: its split file's name, the list file that defines it (relative
    to the dataset root), the indexer's name for it, and how its annotations are scored
    (None: no per-frame ground truth, e.g. a test set)."""

    name: str
    list_file: str
    split: str
    score_format: str | None


@dataclass(frozen=True)
class DatasetInfo:
    """Everything ssmvos needs to know about one dataset."""

    key: str
    title: str
    folder: str  # default folder under the datasets root
    splits: tuple[SplitInfo, ...]
    indexer: Indexer
    archive_url: str | None = None  # the zip ``download-data`` fetches; None: see instructions
    required_folders: tuple[str, ...] = ("JPEGImages", "Annotations", "ImageSets")
    instructions: str | None = None  # how to get it by hand ({root} = its folder)

    @property
    def flag(self) -> str:
        """The command-line flag that gives its root, e.g. ``--davis2017-test``."""
        return "--" + self.key.replace("_", "-")

    def index(self, root: str | Path, split: SplitInfo, notes: Notes | None = None) -> list[FrameEntry]:
        """The entries of ``split`` of this dataset at ``root``."""
        return self.indexer(Path(root), split.split, notes)


DATASETS: dict[str, DatasetInfo] = {d.key: d for d in (
    DatasetInfo(
        "davis2016", "DAVIS 2016 train/val", "DAVIS2016",
        (SplitInfo("davis2016_train", "ImageSets/480p/train.txt", "train", "davis2016"),
         SplitInfo("davis2016_val", "ImageSets/480p/val.txt", "val", "davis2016")),
        indexer=index_davis2016,
        archive_url="https://graphics.ethz.ch/Downloads/Data/Davis/DAVIS-data.zip"),
    DatasetInfo(
        "davis2017", "DAVIS 2017 train/val", "DAVIS2017",
        (SplitInfo("davis2017_train", "ImageSets/2017/train.txt", "train", "davis2017"),
         SplitInfo("davis2017_val", "ImageSets/2017/val.txt", "val", "davis2017")),
        indexer=index_davis2017,
        archive_url="https://data.vision.ee.ethz.ch/csergi/share/davis/DAVIS-2017-trainval-480p.zip"),
    DatasetInfo(
        "davis2017_test", "DAVIS 2017 test-dev", "DAVIS2017_test",
        (SplitInfo("davis2017_test", "ImageSets/2017/test-dev.txt", "test", None),),
        indexer=index_davis2017,
        archive_url="https://data.vision.ee.ethz.ch/csergi/share/davis/DAVIS-2017-test-dev-480p.zip"),
    DatasetInfo(
        "youtube", "YouTube-VOS 2018 (train/ and valid/)", "YouTubeVOS",
        (SplitInfo("youtube_train", "train/meta.json", "train", "generic"),
         SplitInfo("youtube_test", "valid/meta.json", "test", None)),
        indexer=index_youtube,
        required_folders=("train", "valid"),
        instructions=YOUTUBE_INSTRUCTIONS),
    DatasetInfo(
        "youtube2019", "YouTube-VOS 2019 (train/ and valid/)", "YouTubeVOS2019",
        (SplitInfo("youtube2019_train", "train/meta.json", "train", "generic"),
         SplitInfo("youtube2019_test", "valid/meta.json", "test", None)),
        indexer=index_youtube,
        required_folders=("train", "valid"),
        instructions=VOS_LAYOUT_INSTRUCTIONS.format(name="YouTube-VOS 2019", where=(
            "the 2019 challenge's train.zip and valid.zip, through https://youtube-vos.org/dataset/vos/ "
            "(CodaLab registration)"), meta="       {root}/train/meta.json, {root}/valid/meta.json\n")),
    DatasetInfo(
        "mose", "MOSE (or any dataset in YouTube-VOS's layout: train/ and valid/ with JPEGImages/ and "
        "Annotations/; objects come from the annotation PNGs when there is no meta.json)", "MOSE",
        (SplitInfo("mose_train", "train/Annotations", "train", "generic"),
         SplitInfo("mose_test", "valid/Annotations", "test", None)),
        indexer=index_youtube,
        required_folders=("train", "valid"),
        instructions=VOS_LAYOUT_INSTRUCTIONS.format(name="MOSE", where=(
            "train.tar.gz and valid.tar.gz from the links on https://henghuiding.github.io/MOSE/"), meta="")),
)}


def dataset(key: str) -> DatasetInfo:
    """The registered dataset ``key`` (dashes accepted for underscores); SSMVOSError if unknown."""
    info = DATASETS.get(key.replace("-", "_"))
    if info is None:
        raise SSMVOSError(f"unknown dataset {key!r}; choose one of {', '.join(DATASETS)}")
    return info


def split_info(split_file: str | Path) -> tuple[DatasetInfo, SplitInfo] | None:
    """The registered dataset and split a split file is named after (``davis2017_val.json``), or None."""
    name = Path(split_file).stem
    for info in DATASETS.values():
        for split in info.splits:
            if split.name == name:
                return info, split
    return None


def split_score_format(split_file: str | Path, entries: list[FrameEntry], annotations: Path) -> str:
    """The rules a split's results are scored with: its registered split's format (e.g.
    ``davis2017_val.json`` -> davis2017); for a split file of its own, what it holds: DAVIS
    2016's single object (index 255) -> davis2016, the ``Annotations/480p`` folder of a
    DAVIS root -> davis2017, anything else (YouTube-VOS-layout datasets: hold-outs of
    YouTube-VOS or MOSE train) -> generic."""
    known = split_info(split_file)
    if known is not None and known[1].score_format is not None:
        return known[1].score_format
    if {e.object_index for e in entries} == {255}:
        return "davis2016"
    if annotations.name == "480p" and annotations.parent.name == "Annotations":
        return "davis2017"
    return "generic"


def default_roots(datasets_root: str | Path) -> dict[str, Path]:
    """The dataset folders of the default layout that exist under ``datasets_root``."""
    base = Path(datasets_root)
    return {key: base / d.folder for key, d in DATASETS.items() if (base / d.folder).is_dir()}


def index_datasets(roots: dict[str, str | Path], out_dir: str | Path,
                   report: Callable[[str], None] = print) -> list[Path]:
    """Index every split whose dataset root is in ``roots`` and whose list file exists.

    ``roots`` maps dataset keys (see :data:`DATASETS`) to folders. Writes
    ``<out_dir>/<split>.json``; a missing list file is reported in one line and skipped.
    Every split is indexed before any file is written: an error in one (a malformed list
    file) writes none. Returns the files written; raises SSMVOSError if a root is missing or
    nothing was found.
    """
    infos = {dataset(key).key: Path(root) for key, root in roots.items()}
    for key, root in infos.items():
        if not root.is_dir():
            raise SSMVOSError(f"{key} root folder not found: {root}")
    indexed: list[tuple[str, list[FrameEntry]]] = []
    for key, root in infos.items():
        info = DATASETS[key]
        for split in info.splits:
            list_path = root / split.list_file
            if not list_path.exists():  # a list file, or (MOSE) the annotation folder
                report(f"{split.name}: skipped, no list file {list_path}")
                continue
            indexed.append((split.name, info.index(root, split, report)))
    if not indexed:
        raise SSMVOSError("no split list found in the given dataset roots "
                          f"({', '.join(str(r) for r in infos.values())}); nothing written; {DOWNLOAD_HINT}")
    written = []
    for name, entries in indexed:
        out = Path(out_dir) / f"{name}.json"
        write_split(out, entries)
        videos = len({e.video_name for e in entries})
        report(f"{name}: {len(entries)} entries, {videos} videos -> {out}")
        written.append(out)
    return written
