"""Datasets by name: `data.dataset` read through the `datasets` library, handed on as files.

A hub id (`stanfordnlp/sst2`), a folder written by `save_to_disk`, or a local folder of data
files is loaded with `datasets.load_dataset` / `load_from_disk` under the hub's own online and
offline rules (`HF_HUB_OFFLINE`, `HF_DATASETS_CACHE`, `HF_TOKEN`). Each split tunelab uses is then
written once to a Parquet file named by its content, in tunelab's folder of the datasets cache, and
from there on flows through exactly the path a user's own files take: the same reader, cleaning,
dedup, split and leakage checks, and the same sha256 record in the run card.

Class labels are written as their names (SST-2's 0/1 become negative/positive), and a split whose
labels are all -1 (the unlabelled test split of GLUE sets) is left out with a warning, so the
test split is carved from train as for a file without one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.errors import DataError
from tunelab.suggest import did_you_mean, short_list, short_repr

if TYPE_CHECKING:
    from tunelab.config import DataConfig

ROLES = ("train", "validation", "test")
# The names datasets on the hub give their splits, per role, in the order they are tried.
SPLIT_NAMES = {
    "train": ("train",),
    "validation": ("validation", "valid", "val", "dev", "eval"),
    "test": ("test",),
}
FOLDER = "tunelab-splits"
OFFLINE_FIX = "Set HF_HUB_OFFLINE=0 to download it, or point data.train_file at a local file."


@dataclass(frozen=True)
class NamedDataset:
    """What `data.dataset` resolved to: the Parquet file for each role and where it came from."""

    files: dict[str, str]  # role → Parquet file
    splits: dict[str, str]  # role → the dataset's own split name
    commit: str | None  # hub datasets: the snapshot's commit, when the hub cache holds it


def split_files(cfg: DataConfig) -> dict[str, str | None]:
    """train/validation/test → the file each split is read from: the configured files, or the
    Parquet copies of the named dataset's splits (None where there is none: carved from train)."""
    if cfg.dataset is None:
        return {"train": cfg.train_file, "validation": cfg.validation_file, "test": cfg.test_file}
    files = named_dataset(cfg).files
    return {role: files.get(role) for role in ROLES}


def dataset_record(cfg: DataConfig) -> dict[str, Any] | None:
    """For the run card: the dataset, its config, revision and commit, and the split per role."""
    if cfg.dataset is None:
        return None
    named = named_dataset(cfg)
    return {
        "name": cfg.dataset,
        "config": cfg.dataset_config,
        "revision": cfg.revision,
        "commit": named.commit,
        "splits": named.splits,
    }


def named_dataset(cfg: DataConfig) -> NamedDataset:
    assert cfg.dataset is not None
    return _named(
        cfg.dataset, cfg.dataset_config, cfg.revision, tuple(sorted(cfg.dataset_splits.items()))
    )


@functools.lru_cache(maxsize=8)
def _named(
    name: str,
    config: str | None,
    revision: str | None,
    splits: tuple[tuple[str, str], ...] = (),
) -> NamedDataset:
    """Load the dataset once per process and write the splits tunelab uses as Parquet files."""
    dataset = _load(name, config, revision)
    chosen = _choose_splits(name, dataset, dict(splits))
    folder = _cache_folder() / _slug(name, config, revision)
    written: dict[str, str] = {}
    for role, split in list(chosen.items()):
        frame = _frame(dataset[split])
        if role != "train" and _unlabelled(frame):
            print(
                f"data warning: {name}: the '{split}' split has no labels (every label is -1); "
                f"the {role} split is carved from train instead.",
                file=sys.stderr,
            )
            del chosen[role]
            continue
        written[role] = str(_write_parquet(frame, folder, split))
    return NamedDataset(written, chosen, _hub_commit(name, revision))


def _hub_commit(name: str, revision: str | None) -> str | None:
    """The commit the hub cache's ref points at (or the revision itself, when it is one)."""
    if revision and len(revision) == 40 and all(c in "0123456789abcdef" for c in revision):
        return revision
    if Path(name).expanduser().exists() or name.count("/") > 1:
        return None
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    ref = (
        Path(constants.HF_HUB_CACHE)
        / repo_folder_name(repo_id=name, repo_type="dataset")
        / "refs"
        / (revision or "main")
    )
    try:
        return ref.read_text().strip() or None
    except (OSError, ValueError):
        return None


def _load(name: str, config: str | None, revision: str | None) -> Any:
    import datasets

    local = Path(name).expanduser()
    if not local.exists() and not _offline():
        print(
            f"data.dataset {name}: loading through `datasets` (downloaded to {datasets.config.HF_DATASETS_CACHE} "
            "unless cached; HF_HUB_OFFLINE=1 keeps to the cache)",
            file=sys.stderr,
        )
    try:
        with _quiet_hub_loggers():
            loaded = _read(name, local, config, revision)
    except DataError:
        raise
    except ValueError as exc:
        raise DataError(_value_error_line(name, config, exc)) from None
    except (ConnectionError, FileNotFoundError) as exc:
        raise DataError(_missing_line(name, exc)) from None
    except Exception as exc:  # the hub client's own errors: gated, revision not found, HTTP
        raise DataError(_hub_error_line(name, revision, exc)) from None
    if isinstance(loaded, datasets.Dataset):  # save_to_disk of one split: it is the train split
        return {"train": loaded}
    return loaded


@contextlib.contextmanager
def _quiet_hub_loggers() -> Iterator[None]:
    """The hub client and datasets log each retry and cache fallback as a warning; the outcome
    is said once, by tunelab, as one line."""
    loggers = [logging.getLogger(n) for n in ("huggingface_hub", "datasets")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _read(name: str, local: Path, config: str | None, revision: str | None) -> Any:
    import datasets

    if local.is_dir() and (
        (local / "dataset_dict.json").is_file() or (local / "state.json").is_file()
    ):
        if config or revision:
            raise DataError(
                f"data.dataset {short_repr(name)} is a folder written by save_to_disk; it has no "
                "configs or revisions. Remove data.dataset_config and data.revision."
            )
        return datasets.load_from_disk(str(local))
    return datasets.load_dataset(name, config, revision=revision)


def _choose_splits(name: str, dataset: Any, asked: dict[str, str]) -> dict[str, str]:
    available = list(dataset.keys())
    for role, split in asked.items():
        if split not in available:
            raise DataError(
                f"data.dataset_splits.{role}: {name} has no split {short_repr(split)}."
                f"{did_you_mean(split, available)} Its splits: {short_list(available)}."
            )
    chosen: dict[str, str] = {}
    for role in ROLES:  # a split given to a role is not also picked by name for another
        if role in asked:
            chosen[role] = asked[role]
            continue
        found = next(
            (s for s in SPLIT_NAMES[role] if s in available and s not in asked.values()), None
        )
        if found is not None:
            chosen[role] = found
    if "train" not in chosen:
        if len(available) == 1:
            chosen["train"] = available[0]
        else:
            raise DataError(
                f"data.dataset: {name} has no split named train; its splits: {short_list(available)}. "
                "Set data.dataset_splits.train to the one to train on."
            )
    if len(set(chosen.values())) < len(chosen):
        raise DataError(
            f"data.dataset_splits: one split of {name} is used twice ({chosen}). Give each role its own split."
        )
    return chosen


def _frame(split: Any) -> Any:
    """The split as a DataFrame, class labels as their names."""
    import datasets

    frame = split.to_pandas()
    for column, feature in split.features.items():
        if isinstance(feature, datasets.ClassLabel):
            names = feature.names
            frame[column] = [names[v] if 0 <= v < len(names) else v for v in frame[column]]
    return frame


def _unlabelled(frame: Any) -> bool:
    for column in ("label", "labels"):
        if column in frame.columns and len(frame) > 0:
            values = frame[column]
            return bool((values.astype(str) == "-1").all())
    return False


def _write_parquet(frame: Any, folder: Path, split: str) -> Path:
    """Write to a temporary file, name it by its content, rename into place (atomic)."""
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{split}.{os.getpid()}.partial"
    try:
        frame.to_parquet(temporary, index=False)
        digest = hashlib.sha256(temporary.read_bytes()).hexdigest()[:16]
        target = folder / f"{split}-{digest}.parquet"
        if target.is_file():
            temporary.unlink()
        else:
            os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise DataError(
            f"cannot write the dataset's {split} split to {folder}: {exc.strerror or exc}. "
            "Free disk space there or set HF_DATASETS_CACHE to a writable folder."
        ) from None
    return target


def _cache_folder() -> Path:
    import datasets

    return Path(datasets.config.HF_DATASETS_CACHE) / FOLDER


def _slug(name: str, config: str | None, revision: str | None) -> str:
    readable = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(name).name)[:60]
    key = hashlib.sha256(
        f"{Path(name).expanduser().resolve() if Path(name).expanduser().exists() else name}\0{config}\0{revision}".encode()
    ).hexdigest()[:12]
    return f"{readable}-{key}"


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _missing_line(name: str, exc: Exception) -> str:
    if _offline():
        return (
            f"data.dataset {short_repr(name)} is not in the datasets cache and downloads are off "
            f"(HF_HUB_OFFLINE=1). {OFFLINE_FIX}"
        )
    if Path(name).expanduser().exists() or name.startswith((".", "/", "~")):
        return (
            f"data.dataset {short_repr(name)}: no dataset there ({short_repr(str(exc), 120)}). "
            "Give a folder written by save_to_disk, a folder of data files, or a hub id."
        )
    return (
        f"data.dataset {short_repr(name)} could not be fetched from the hub ({short_repr(str(exc), 120)}). "
        "Check the id and your network, or point data.train_file at a local file."
    )


def _value_error_line(name: str, config: str | None, exc: ValueError) -> str:
    text = str(exc)
    if "Config name is missing" in text or "BuilderConfig" in text:
        shown = text.split("\n")[0]
        return (
            f"data.dataset_config: {name}: {short_repr(shown, 160)}. "
            "Set data.dataset_config to one of the dataset's configs."
        )
    return f"data.dataset {short_repr(name)}: {short_repr(text.splitlines()[0] if text else type(exc).__name__, 160)}."


def _hub_error_line(name: str, revision: str | None, exc: Exception) -> str:
    kind = type(exc).__name__
    if "Gated" in kind:
        return f"data.dataset {name} is gated: accept its terms on the hub, then set HF_TOKEN to a token of that account."
    if "Revision" in kind:
        return f"data.revision {short_repr(revision)} does not exist for {name}. Give a branch, tag or commit."
    if "NotFound" in kind or "RepositoryNotFound" in kind:
        return (
            f"data.dataset {short_repr(name)} was not found on the hub (or is private: set HF_TOKEN). "
            "Check the id, or point data.train_file at a local file."
        )
    return (
        f"data.dataset {short_repr(name)} could not be loaded: {kind}: {short_repr(str(exc), 140)}."
    )
