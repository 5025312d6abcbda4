"""A real full disk: training on a small tmpfs runs out of space during a checkpoint write.

Needs root to mount a tmpfs (CI and our machines run as root); skipped elsewhere, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import tunelab
from tunelab.errors import OutputError
from tunelab.runs.place import complete_checkpoints
from tunelab.workflows.check import build_checked as build_config


@pytest.fixture
def small_disk(tmp_path: Path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=420k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_out_of_space_mid_checkpoint_is_one_line_and_resumes_after(
    tiny_config, small_disk: Path
) -> None:
    raw = tiny_config.to_dict()
    raw["train"].update(epochs=3, eval_every="steps", eval_steps=3, eval_on_start=False)
    raw["output"].update(dir=str(small_disk), name="cramped")
    cfg = build_config(raw)
    with pytest.raises(OutputError) as raised:
        tunelab.train(cfg)
    message = str(raised.value)
    assert "\n" not in message and len(message) < 300, message
    assert message.startswith(f"the disk is full while writing {small_disk}/cramped"), message
    assert "MB is needed" in message and "is intact" in message and "--resume" in message
    run_dir = small_disk / "cramped"
    complete = complete_checkpoints(run_dir)
    assert complete, "the last complete checkpoint survives"
    card = json.loads((run_dir / "run_card.json").read_text())
    assert card["status"] == "failed" and "disk is full" in card["reason"]

    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    raw["train"]["resume"] = True
    resumed = tunelab.train(build_config(raw))
    raw["train"]["resume"] = False
    raw["output"].update(dir=str(small_disk), name="roomy")
    straight = tunelab.train(build_config(raw))
    ours, theirs = resumed.metrics["training"], straight.metrics["training"]
    assert [s for s, _ in ours["loss_curve"]] == [s for s, _ in theirs["loss_curve"]]
    assert [v for _, v in ours["loss_curve"]] == pytest.approx([v for _, v in theirs["loss_curve"]])
    assert ours["train_loss"] == pytest.approx(theirs["train_loss"])


def test_a_read_only_output_dir_is_one_line(tiny_config, tmp_path: Path) -> None:
    mount = tmp_path / "ro"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mount)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        raw = tiny_config.to_dict()
        raw["output"].update(dir=str(mount / "runs"), name="nowhere")
        with pytest.raises(OutputError) as raised:
            tunelab.train(build_config(raw))
        message = str(raised.value)
        assert "\n" not in message and "read-only" in message and "output.dir" in message
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
