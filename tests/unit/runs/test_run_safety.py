"""Nothing lost, nothing deleted: run directories, complete checkpoints, exact resume, divergence, full disks."""

from __future__ import annotations

import errno
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file
from transformers import Trainer

import tunelab
from tunelab.errors import ConfigError, OutputError, TrainingError
from tunelab.runs import load_predictor
from tunelab.runs.place import (
    CHECKPOINT_RECORD,
    claim,
    close_abandoned,
    complete_checkpoints,
    is_tunelab_run,
)
from tunelab.training.callbacks import ConciseProgress
from tunelab.workflows.check import build_checked as build_config


class Crash(RuntimeError):
    pass


def configured(tiny_config, name: str, **train):
    raw = tiny_config.to_dict()
    raw["train"].update(epochs=2, eval_every="steps", eval_steps=4, eval_on_start=False)
    raw["train"].update(train)
    raw["output"].update(name=name)
    return build_config(raw)


def with_output(cfg, **output):
    raw = cfg.to_dict()
    raw["output"].update(output)
    return build_config(raw)


def crash_at(monkeypatch: pytest.MonkeyPatch, step: int, error: BaseException) -> None:
    original = ConciseProgress.on_step_end

    def crash(self, args, state, control, **kwargs):
        original(self, args, state, control, **kwargs)
        if state.global_step == step:
            raise error

    monkeypatch.setattr(ConciseProgress, "on_step_end", crash)


def assert_close(a, b, where: str = "") -> None:
    """Nested metrics equal, floats within 1e-6 relative (the same math, run in two processes' worth)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-9), where
    else:
        assert a == b, where


def card(run_dir: Path) -> dict:
    return json.loads((run_dir / "run_card.json").read_text())


# ---- run directory names and ownership ------------------------------------------------------


@pytest.mark.parametrize("name", ["../victim", ".", "..", "a/b", ".hidden", ""])
def test_output_name_must_be_a_plain_name(tiny_config, name: str) -> None:
    raw = tiny_config.to_dict()
    raw["output"].update(name=name, overwrite=True)
    with pytest.raises(ConfigError, match=r"output\.name must be a plain directory name"):
        build_config(raw)


def test_overwrite_never_replaces_a_foreign_directory(tiny_config) -> None:
    foreign = Path(tiny_config.output.dir) / "mine"
    foreign.mkdir(parents=True)
    (foreign / "thesis.txt").write_text("years of work")
    cfg = with_output(configured(tiny_config, "mine"), overwrite=True)
    with pytest.raises(ConfigError, match="is not a tunelab run directory"):
        tunelab.train(cfg)
    assert (foreign / "thesis.txt").read_text() == "years of work"
    assert sorted(p.name for p in foreign.parent.iterdir()) == ["mine"]


def test_overwrite_never_follows_a_symlink(tiny_config, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "config.yaml").write_text("x: 1")
    (target / "run_card.json").write_text('{"tool": "tunelab"}')
    runs = Path(tiny_config.output.dir)
    runs.mkdir(parents=True)
    (runs / "linked").symlink_to(target)
    assert not is_tunelab_run(runs / "linked")
    with pytest.raises(ConfigError, match="is not a tunelab run directory"):
        claim(runs, "linked", overwrite=True, resume=False)
    assert (target / "config.yaml").read_text() == "x: 1"


def test_a_failed_overwrite_leaves_the_previous_run_intact(
    tiny_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = tunelab.train(configured(tiny_config, "kept"))
    weights = (first.run_dir / "model" / "model.safetensors").read_bytes()
    metrics = (first.run_dir / "metrics.json").read_text()
    crash_at(monkeypatch, 6, Crash("power cut during the overwrite"))
    with pytest.raises(Crash):
        tunelab.train(with_output(configured(tiny_config, "kept", lr=1e-3), overwrite=True))
    assert (first.run_dir / "model" / "model.safetensors").read_bytes() == weights
    assert (first.run_dir / "metrics.json").read_text() == metrics
    assert card(first.run_dir)["status"] == "completed"
    staging = first.run_dir.with_name(".kept.next")
    assert card(staging)["status"] == "failed"
    monkeypatch.undo()
    second = tunelab.train(with_output(configured(tiny_config, "kept", lr=1e-3), overwrite=True))
    assert second.run_dir == first.run_dir
    assert (second.run_dir / "model" / "model.safetensors").read_bytes() != weights
    assert "lr: 0.001" in (second.run_dir / "config.yaml").read_text()
    assert sorted(p.name for p in second.run_dir.parent.iterdir()) == ["kept"]


def test_an_interrupted_swap_is_undone_by_the_next_start(tiny_config) -> None:
    runs = Path(tiny_config.output.dir)
    first = tunelab.train(configured(tiny_config, "swap"))
    os.replace(first.run_dir, runs / ".swap.old")  # killed between publish()'s two renames
    (runs / ".swap.next").mkdir()
    (runs / ".swap.next" / ".tunelab-staging").write_text("")
    place = claim(runs, "swap", overwrite=True, resume=False)
    assert card(runs / "swap")["status"] == "completed"  # the old run is back in its place
    assert place.work == runs / ".swap.next"


# ---- checkpoints and resume ----------------------------------------------------------------


def test_resume_skips_incomplete_checkpoints_and_matches_the_uninterrupted_run(
    tiny_config, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    straight = tunelab.train(configured(tiny_config, "straight"))
    crash_at(monkeypatch, 10, Crash("kill -9"))
    with pytest.raises(Crash):
        tunelab.train(configured(tiny_config, "crashed"))
    monkeypatch.undo()
    run_dir = Path(tiny_config.output.dir) / "crashed"
    assert card(run_dir)["status"] == "failed"
    checkpoints = run_dir / "checkpoints"
    assert [p.name for p in complete_checkpoints(run_dir)] == ["checkpoint-4", "checkpoint-8"]
    # a save cut short: only config.json made it; and one whose optimizer file was truncated
    (checkpoints / "checkpoint-12").mkdir()
    (checkpoints / "checkpoint-12" / "config.json").write_text("{}")
    truncated = checkpoints / "checkpoint-8" / "optimizer.pt"
    copy = truncated.read_bytes()
    truncated.write_bytes(copy[: len(copy) // 2])
    assert [p.name for p in complete_checkpoints(run_dir)] == ["checkpoint-4"]
    truncated.write_bytes(copy)  # restore: resume from 8, with 12 skipped

    resumed = tunelab.train(configured(tiny_config, "crashed", resume=True))
    assert "skipping checkpoint-12: incomplete" in capsys.readouterr().out
    a, b = straight.metrics, resumed.metrics
    steps, losses = zip(*b["training"]["loss_curve"], strict=True)
    assert [s for s, _ in a["training"]["loss_curve"]] == list(steps) == list(range(2, 25, 2))
    assert [loss for _, loss in a["training"]["loss_curve"]] == pytest.approx(losses, rel=1e-6)
    assert a["training"]["train_loss"] == pytest.approx(b["training"]["train_loss"], rel=1e-6)
    assert [e["step"] for e in b["training"]["validation_curve"]] == [4, 8, 12, 16, 20, 24]
    for x, y in zip(
        a["training"]["validation_curve"], b["training"]["validation_curve"], strict=True
    ):
        assert x.keys() == y.keys()
        for key in ("step", "loss", "accuracy", "macro_f1"):
            assert x[key] == pytest.approx(y[key], rel=1e-6)
    assert_close(a["test"], b["test"])
    assert a["training"]["best_checkpoint"] == b["training"]["best_checkpoint"]
    resumed_card = card(resumed.run_dir)
    assert resumed_card["status"] == "completed" and resumed_card["resumed_after"] == "failed"


@pytest.mark.parametrize("order", ["sorted", "shuffled"])
def test_a_run_resumed_in_its_second_epoch_sees_the_same_batches(
    tiny_config, monkeypatch: pytest.MonkeyPatch, order: str
) -> None:
    """12 steps an epoch: killed at 18, resumed from checkpoint-16, mid-way through epoch 2.

    Before the sampler was seeded per epoch, the resumed epoch was drawn in another order and the
    loss curve parted from step 17 on (transformers' LengthGroupedSampler used the global RNG).
    """
    straight = tunelab.train(configured(tiny_config, f"straight-{order}", bucket_order=order))
    crash_at(monkeypatch, 18, Crash("kill -9"))
    with pytest.raises(Crash):
        tunelab.train(configured(tiny_config, f"epoch2-{order}", bucket_order=order))
    monkeypatch.undo()
    resumed = tunelab.train(
        configured(tiny_config, f"epoch2-{order}", bucket_order=order, resume=True)
    )
    assert_close(
        straight.metrics["training"]["loss_curve"], resumed.metrics["training"]["loss_curve"]
    )
    assert_close(straight.metrics["test"], resumed.metrics["test"])


def test_a_kill_after_the_last_checkpoint_resumes_to_the_same_train_loss(
    tiny_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by benchmarks/kill_resume.py: nothing left to train, and the train loss was 0.0."""
    straight = tunelab.train(configured(tiny_config, "to-the-end"))

    def crash(self, args, state, control, **kwargs):
        if state.global_step == 24:
            raise Crash("kill -9 after the last checkpoint")

    monkeypatch.setattr(ConciseProgress, "on_save", crash, raising=False)
    with pytest.raises(Crash):
        tunelab.train(configured(tiny_config, "last-step"))
    monkeypatch.undo()
    resumed = tunelab.train(configured(tiny_config, "last-step", resume=True))
    assert resumed.metrics["training"]["train_loss"] == pytest.approx(
        straight.metrics["training"]["train_loss"], rel=1e-6
    )
    assert_close(straight.metrics["test"], resumed.metrics["test"])


def test_resume_of_a_finished_run_is_refused(tiny_config) -> None:
    done = tunelab.train(configured(tiny_config, "done"))
    before = (done.run_dir / "metrics.json").read_text()
    with pytest.raises(ConfigError, match="already finished"):
        tunelab.train(configured(tiny_config, "done", resume=True))
    assert (done.run_dir / "metrics.json").read_text() == before


def test_ctrl_c_marks_the_run_interrupted(tiny_config, monkeypatch: pytest.MonkeyPatch) -> None:
    crash_at(monkeypatch, 5, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        tunelab.train(configured(tiny_config, "stopped"))
    assert card(Path(tiny_config.output.dir) / "stopped")["status"] == "interrupted"


def test_a_card_left_running_by_a_dead_process_is_read_as_interrupted(
    tiny_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash_at(monkeypatch, 5, Crash("kill -9"))
    with pytest.raises(Crash):
        tunelab.train(configured(tiny_config, "killed"))
    monkeypatch.undo()
    run_dir = Path(tiny_config.output.dir) / "killed"
    stale = card(run_dir) | {"status": "running", "pid": 2**22 + 12345}  # no such process
    (run_dir / "run_card.json").write_text(json.dumps(stale))
    resumed = tunelab.train(configured(tiny_config, "killed", resume=True))
    assert card(resumed.run_dir)["resumed_after"] == "interrupted"


def test_the_launcher_closes_only_cards_its_own_dead_workers_left_running(tmp_path: Path) -> None:
    """A rank killed while blocked in a collective never writes its card; the launcher does."""
    since = datetime.now(UTC).replace(microsecond=0)
    before = (since - timedelta(hours=1)).isoformat()
    host = os.uname().nodename
    dead = 2**22 + 12345  # no such process

    def written(name: str, **fields) -> Path:
        run_dir = tmp_path / name
        run_dir.mkdir()
        (run_dir / "config.yaml").write_text("task: {}\n")
        record = {"tool": "tunelab", "status": "running", "pid": dead, "host": host}
        record["started_at"] = since.isoformat()
        (run_dir / "run_card.json").write_text(json.dumps(record | fields))
        return run_dir

    abandoned = written("abandoned")
    staging = written(".abandoned.next")
    older = written("older", started_at=before)  # an earlier run's card: not this launch's
    alive = written("alive", pid=os.getpid())
    elsewhere = written("elsewhere", host=host + "-other")
    done = written("done", status="completed")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "run_card.json").write_text(json.dumps({"status": "running", "pid": dead}))

    closed = close_abandoned(tmp_path, since, "training process rank 1 failed, killed by SIGKILL")

    assert closed == [staging, abandoned]
    for run_dir in closed:
        assert card(run_dir)["status"] == "failed"
        assert card(run_dir)["reason"].startswith("training process rank 1 failed")
    for run_dir in (older, alive, elsewhere):
        assert card(run_dir)["status"] == "running"
    assert card(done)["status"] == "completed"
    assert json.loads((foreign / "run_card.json").read_text()) == {"status": "running", "pid": dead}
    assert close_abandoned(tmp_path / "missing", since, "x") == []


def test_a_full_disk_is_one_line_and_keeps_the_last_complete_checkpoint(
    tiny_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Trainer._save_rng_state

    def fill_disk(self, output_dir):
        if self.state.global_step == 8:
            Path(output_dir, "rng_state.pth").write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device", str(output_dir))
        return original(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", fill_disk)
    with pytest.raises(OutputError) as raised:
        tunelab.train(configured(tiny_config, "full-disk"))
    message = str(raised.value)
    assert "\n" not in message and len(message) < 300
    assert "the disk is full while writing" in message and "MB is needed" in message
    assert "checkpoint-4, is intact" in message and "--resume" in message
    run_dir = Path(tiny_config.output.dir) / "full-disk"
    assert [p.name for p in complete_checkpoints(run_dir)] == ["checkpoint-4"]
    assert card(run_dir)["status"] == "failed"
    monkeypatch.undo()
    resumed = tunelab.train(configured(tiny_config, "full-disk", resume=True))
    assert resumed.metrics["training"]["steps"] == 24


def test_every_checkpoint_carries_its_completion_record(tiny_config) -> None:
    run = tunelab.train(configured(tiny_config, "records"))
    for checkpoint in (run.run_dir / "checkpoints").glob("checkpoint-*"):
        record = json.loads((checkpoint / CHECKPOINT_RECORD).read_text())
        assert record["step"] == int(checkpoint.name.split("-")[1])
        assert "trainer_state.json" in record["files"] and "optimizer.pt" in record["files"]


# ---- divergence ---------------------------------------------------------------------------


def test_a_diverging_run_stops_in_one_line_and_saves_nothing(tiny_config) -> None:
    cfg = configured(tiny_config, "diverged", lr=1e3)
    with pytest.raises(TrainingError, match=r"training diverged at step \d+") as raised:
        tunelab.train(cfg)
    assert "\n" not in str(raised.value) and "lower train.lr" in str(raised.value)
    run_dir = Path(tiny_config.output.dir) / "diverged"
    assert not (run_dir / "model").exists() and not (run_dir / "metrics.json").exists()
    assert card(run_dir)["status"] == "failed" and "diverged" in card(run_dir)["reason"]


def test_a_model_with_nan_weights_is_never_loaded(tiny_config) -> None:
    run = tunelab.train(configured(tiny_config, "poisoned", epochs=1))
    weights = run.run_dir / "model" / "model.safetensors"
    tensors = load_file(weights)
    name = next(k for k in tensors if k.endswith("classifier.weight"))
    tensors[name][0, 0] = float("nan")
    save_file(tensors, weights, metadata={"format": "pt"})
    with pytest.raises(TrainingError, match=f"NaN/inf weights \\({name}"):
        load_predictor(run.run_dir)


def test_json_written_by_tunelab_is_strict(tmp_path: Path) -> None:
    from tunelab.io import atomic_write_json

    atomic_write_json(tmp_path / "m.json", {"loss": float("nan"), "curve": [1.0, float("inf")]})
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}")) == {
        "loss": None,
        "curve": [1.0, None],
    }


def test_predict_prints_strict_json_even_for_overflowing_logits(tiny_config) -> None:
    """Finite weights whose logits overflow give NaN probabilities: printed as null, not NaN."""
    from inputs_cli import invoke

    run = tunelab.train(configured(tiny_config, "overflow", epochs=1))
    weights = run.run_dir / "model" / "model.safetensors"
    tensors = load_file(weights)
    name = next(k for k in tensors if k.endswith("classifier.weight"))
    tensors[name] = tensors[name].sign() * 3e38  # finite, but every logit is +-inf
    save_file(tensors, weights, metadata={"format": "pt"})
    outcome = invoke("predict", run.run_dir, "--text", "the movie was superb")
    assert outcome.exit_code == 0, outcome.stderr
    record = json.loads(
        outcome.stdout.strip(), parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}")
    )
    assert record["text"] == "the movie was superb"
    assert record["probability"] is None or 0.0 <= record["probability"] <= 1.0
