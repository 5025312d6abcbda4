"""The one owner of a run directory: where it is, whether it is tunelab's, how it is replaced, its checkpoints.

- **Names**: `output.name` is a plain name (no path separators, not `.`/`..`, no leading dot), so a
  run directory is always a direct child of `output.dir`.
- **Ownership**: a directory is a tunelab run when its `run_card.json` says so (`"tool": "tunelab"`,
  or the `packages` record of cards written before that key existed) and it has a `config.yaml`.
  Overwrite replaces only such a directory, never a parent, a symlink or a foreign directory.
- **Atomic replacement**: an overwrite trains into a sibling staging directory `.<name>.next` and
  swaps it in with two renames when the run has finished, so a failed or killed overwrite leaves the
  previous run as it was. An interrupted swap is finished (or undone) by the next `claim`.
- **Checkpoints**: a `checkpoint-N/` counts only when its completion record
  (`tunelab_checkpoint.json`, written last, atomically, listing every file and its size) is there and
  every listed file has its recorded size. `--resume` takes the newest complete one and removes
  incomplete ones (tunelab's own partial writes) with a one-line note.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunelab.config import name_problem
from tunelab.console import say
from tunelab.errors import ConfigError
from tunelab.io import atomic_write_json, read_json

CARD = "run_card.json"
CHECKPOINT_RECORD = "tunelab_checkpoint.json"
STAGING_MARK = ".tunelab-staging"
FINISHED = ("completed",)


def is_tunelab_run(path: Path) -> bool:
    """True for a directory tunelab wrote as a run (its run card says so), never for a symlink."""
    if path.is_symlink() or not path.is_dir() or not (path / "config.yaml").is_file():
        return False
    card = read_json(path / CARD)
    if card is None:
        return False
    packages = card.get("packages")
    return card.get("tool") == "tunelab" or (isinstance(packages, dict) and "tunelab" in packages)


@dataclass(frozen=True)
class RunPlace:
    """Where a run ends up (`final`) and where it is written meanwhile (`work`)."""

    final: Path
    work: Path

    @property
    def replaces(self) -> bool:
        return self.work != self.final

    def publish(self) -> None:
        """Make the finished run the one at `final` (two renames; the old run is removed last)."""
        if not self.replaces:
            return
        old = _sibling(self.final, "old")
        if old.exists():
            shutil.rmtree(old)  # a finished swap's leftover: tunelab's own, checked by claim()
        os.replace(self.final, old)
        os.replace(self.work, self.final)
        (self.final / STAGING_MARK).unlink(missing_ok=True)
        shutil.rmtree(old, ignore_errors=True)

    def failed(self) -> None:
        """Say where a failed replacement is; the previous run was not touched."""
        if self.replaces:
            say(
                f"the previous run in {self.final} is untouched; this failed attempt is in {self.work} "
                "(the next overwrite of the same name replaces it)"
            )


def _sibling(final: Path, kind: str) -> Path:
    return final.with_name(f".{final.name}.{kind}")


def claim(output_dir: str | Path, name: str, overwrite: bool, resume: bool) -> RunPlace:
    """The place for a new run (or for resuming one) named `name` in `output_dir`."""
    problem = name_problem(name)
    if problem:
        raise ConfigError(problem)
    parent = Path(output_dir)
    final = parent / name
    _finish_interrupted_swap(final)
    staging = _sibling(final, "next")
    if resume:
        # an overwrite that was interrupted trains on in its staging directory
        for place in (RunPlace(final, staging), RunPlace(final, final)):
            if is_tunelab_run(place.work) and complete_checkpoints(place.work):
                return place
        raise ConfigError(
            f"train.resume: no complete checkpoint to resume in {final}. Set output.name to the interrupted run's "
            "name (its directory must hold checkpoints/checkpoint-*), or drop train.resume."
        )
    if final.is_symlink() or final.exists():
        if not overwrite:
            raise ConfigError(
                f"output: run directory {final} already exists. Set output.name to a new name or output.overwrite=true."
            )
        if not is_tunelab_run(final):
            raise ConfigError(
                f"output.overwrite: {final} is not a tunelab run directory (no run card of ours), so it is not replaced. "
                "Choose another output.name or output.dir, or move that directory away."
            )
        _remove_own_staging(staging)
        _make_dir(staging)
        (staging / STAGING_MARK).write_text(
            "a tunelab run being written; it replaces its sibling when finished\n"
        )
        return RunPlace(final, staging)
    _remove_own_staging(staging)
    _make_dir(final)
    return RunPlace(final, final)


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        raise ConfigError(
            f"output: {path} appeared while this run was starting. Set another output.name."
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"output.dir: cannot create {path} ({exc.strerror}). Set output.dir to a folder you can write."
        ) from None


def _remove_own_staging(staging: Path) -> None:
    """A staging directory left by an earlier failed overwrite is tunelab's to remove; anything else is not."""
    if not (staging.exists() or staging.is_symlink()):
        return
    if staging.is_symlink() or not (staging / STAGING_MARK).is_file():
        raise ConfigError(
            f"output: {staging} exists and is not tunelab's staging directory. Move it away or choose another output.name."
        )
    shutil.rmtree(staging)


def _finish_interrupted_swap(final: Path) -> None:
    """A crash between publish()'s two renames left `.<name>.old` and no `<name>`: finish or undo it."""
    old, staging = _sibling(final, "old"), _sibling(final, "next")
    if final.exists() or not is_tunelab_run(old):
        return
    card = read_json(staging / CARD) or {}
    if is_tunelab_run(staging) and card.get("status") in FINISHED:
        os.replace(staging, final)
        (final / STAGING_MARK).unlink(missing_ok=True)
        shutil.rmtree(old, ignore_errors=True)
        say(f"finished replacing {final} (an earlier swap was interrupted)")
    else:
        os.replace(old, final)
        say(f"restored {final} (an earlier replacement was interrupted before it finished)")


# ---- checkpoints ---------------------------------------------------------------------------


def _step(path: Path) -> int:
    tail = path.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def _checkpoints(run_dir: Path) -> list[Path]:
    found = [
        p for p in (run_dir / "checkpoints").glob("checkpoint-*") if p.is_dir() and _step(p) >= 0
    ]
    return sorted(found, key=_step)


def mark_complete(checkpoint: Path, extra: dict[str, Any] | None = None) -> None:
    """Write the completion record last: every file of the checkpoint with its size."""
    files = {
        str(p.relative_to(checkpoint)): p.stat().st_size
        for p in sorted(checkpoint.rglob("*"))
        if p.is_file() and p.name != CHECKPOINT_RECORD and not p.name.endswith(".tmp")
    }
    for path in files:
        _fsync(checkpoint / path)
    atomic_write_json(
        checkpoint / CHECKPOINT_RECORD, {"step": _step(checkpoint), "files": files, **(extra or {})}
    )


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoint_record(checkpoint: Path) -> dict[str, Any] | None:
    """The completion record of a checkpoint, or None when it is incomplete."""
    record = read_json(checkpoint / CHECKPOINT_RECORD)
    if record is None or not isinstance(record.get("files"), dict):
        return None
    for name, size in record["files"].items():
        path = checkpoint / name
        if not path.is_file() or path.stat().st_size != size:
            return None
    return record


def _legacy_complete(checkpoint: Path) -> bool:
    """A checkpoint from before completion records: HF writes trainer_state.json last."""
    state = read_json(checkpoint / "trainer_state.json")
    return state is not None and state.get("global_step") == _step(checkpoint)


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """The run's complete checkpoints, oldest first."""
    found = _checkpoints(run_dir)
    if any((p / CHECKPOINT_RECORD).exists() for p in found):
        return [p for p in found if checkpoint_record(p) is not None]
    return [p for p in found if _legacy_complete(p)]  # a run written before the records existed


def resume_checkpoint(run_dir: Path) -> Path:
    """The newest complete checkpoint; incomplete ones (a crash or a full disk mid-write) are removed."""
    complete = complete_checkpoints(run_dir)
    if not complete:
        raise ConfigError(
            f"train.resume: no complete checkpoint in {run_dir}. Start the run again without train.resume."
        )
    for name in remove_incomplete(run_dir):
        say(f"skipping {name}: incomplete (interrupted while it was written); removed")
    return complete[-1]


def remove_incomplete(run_dir: Path) -> list[str]:
    """Remove the checkpoints tunelab began and never completed; returns their names."""
    complete = complete_checkpoints(run_dir)
    removed = []
    for partial in _checkpoints(run_dir):
        if partial not in complete:
            shutil.rmtree(partial, ignore_errors=True)
            removed.append(partial.name)
    return removed


def refuse_finished(run_dir: Path) -> None:
    """`--resume` of a run that already finished would rewrite its results: refused."""
    card = read_json(run_dir / CARD) or {}
    if card.get("status") in FINISHED:
        raise ConfigError(
            f"train.resume: {run_dir} already finished ({card.get('finished_at', 'completed')}); there is nothing to resume. "
            "Start a new run with another output.name (or output.overwrite=true)."
        )


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def disk_full_message(path: Path | str, needed: int | None) -> str:
    where = Path(path)
    free = (
        shutil.disk_usage(where if where.exists() else where.parent).free
        if where.parent.exists()
        else None
    )
    need = f"about {needed / 1e6:,.0f} MB is needed" if needed else "more space is needed"
    have = f", {free / 1e6:,.0f} MB is free" if free is not None else ""
    return f"the disk is full while writing {path} ({need}{have})"


WRITE_FAILURES = ("no space left on device", "os error 28", "file write failed", "disk quota")


def is_disk_full(exc: BaseException, path: Path, needed: int | None) -> bool:
    """An out-of-space failure, whoever raised it.

    Python raises OSError(ENOSPC); safetensors raises its own SafetensorError ("No space left on
    device (os error 28)") and torch.save a RuntimeError ("file write failed"), so a write error
    counts too when the disk it was writing to has less room left than a checkpoint needs.
    """
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if not any(text in str(exc).lower() for text in WRITE_FAILURES):
        return False
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return False
    return free < max(needed or 0, 1 << 20)


def update_card(run_dir: Path, **fields: Any) -> None:
    card = read_json(run_dir / CARD)
    if card is not None:
        card.update(fields)
        atomic_write_json(run_dir / CARD, card)


def close_abandoned(output_dir: str | Path, since: datetime, reason: str) -> list[Path]:
    """Mark failed the runs in `output_dir` started on this host at or after `since` whose card still
    says running though their process is gone: a worker killed while blocked in a collective never
    gets to write its own card, so the launcher that saw it stop does."""
    parent = Path(output_dir)
    closed: list[Path] = []
    if not parent.is_dir():
        return closed
    for run_dir in sorted(parent.iterdir()):
        card = read_json(run_dir / CARD) if is_tunelab_run(run_dir) else None
        if card is None or stale_status(card) is None:
            continue
        try:
            started = datetime.fromisoformat(str(card.get("started_at")))
        except ValueError:
            continue
        if started >= since:
            update_card(
                run_dir,
                status="failed",
                finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
                reason=reason,
            )
            closed.append(run_dir)
    return closed


def stale_status(card: dict[str, Any]) -> str | None:
    """'interrupted' for a card still saying running whose process is gone (a kill -9, a power cut)."""
    if card.get("status") != "running":
        return None
    pid, host = card.get("pid"), card.get("host")
    if not isinstance(pid, int) or host != os.uname().nodename:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "interrupted"
    except PermissionError:
        return None
    return None


__all__ = [
    "RunPlace",
    "claim",
    "complete_checkpoints",
    "is_tunelab_run",
    "mark_complete",
    "resume_checkpoint",
]
