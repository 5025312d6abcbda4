"""`tunelab train --nproc 2`: two processes on loopback (gloo), against one process with the same
global batch. The train split (200 rows) divides by the global batch (20), so each optimizer step
sees the same examples; the validation split (25 rows) does not divide by 2, the padded-last-batch
case of gathered evaluation. The texts have different lengths, so the length-grouped sampler must
group by the global batch for both runs to see the same batches."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import FILLER, toy_sentiment

TUNELAB = str(Path(sys.executable).with_name("tunelab"))
# Eval loss is a per-batch mean weighted by batch, and a padded last batch on one rank holds a
# repeated row: it may differ in the 4th decimal. Metrics come from gathered predictions: equal.
EVAL_LOSS_TOLERANCE = 1e-3
TRAIN_LOSS_TOLERANCE = 1e-5


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [TUNELAB, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


@pytest.fixture
def config(tmp_path: Path, tiny_bert_dir: Path) -> Path:
    data = tmp_path / "toy.csv"
    frame = toy_sentiment(250)
    rng = random.Random(3)  # 5 to 13 words: batches grouped by length differ with their size
    frame["text"] = [
        f"{t} {' '.join(rng.choices(FILLER, k=rng.randint(0, 8)))}" for t in frame.text
    ]
    frame.to_csv(data, index=False)
    raw = {
        "data": {"train_file": str(data), "max_length": 16},
        "model": {"name": str(tiny_bert_dir), "dropout": 0.0},  # no dropout: no per-rank RNG
        "train": {
            "epochs": 6,
            "batch_size": 20,
            "lr": 5e-3,
            "warmup_ratio": 0.0,
            "precision": "fp32",
            "log_every": 7,  # 60 steps: the last 4 come after the last multiple of 7
            "seed": 7,
        },
        "eval": {"forgetting": False},
        "output": {"dir": str(tmp_path / "runs"), "name": "one"},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _log(run_dir: Path) -> list[dict]:
    lines = (run_dir / "logs" / "train_log.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _files(run_dir: Path) -> set[str]:
    names = set()
    for path in run_dir.rglob("*"):
        if path.is_file() and "tfevents" not in path.name:
            names.add(str(path.relative_to(run_dir)).replace("rng_state_0.pth", "rng_state.pth"))
    return names


def test_two_processes_train_like_one_with_the_same_global_batch(
    config: Path, tmp_path: Path
) -> None:
    one = run("train", str(config), cwd=tmp_path)
    assert one.returncode == 0, one.stderr[-2000:]
    two = run(
        "train", str(config), "--nproc", "2", "train.batch_size=10", "output.name=two", cwd=tmp_path
    )
    assert two.returncode == 0, two.stderr[-2000:]
    assert (
        "processes: 2 on 1 node(s), ddp, backend gloo, global batch 20 = 10 per process x 2"
        in two.stdout
    )
    assert two.stdout.count("held-out test split") == 1  # rank 0 alone scores and prints
    runs = tmp_path / "runs"
    first, second = _log(runs / "one"), _log(runs / "two")
    assert [e["step"] for e in first] == [e["step"] for e in second]
    for a, b in zip(first, second, strict=True):
        if "loss" in a:
            assert b["loss"] == pytest.approx(a["loss"], abs=TRAIN_LOSS_TOLERANCE), a["step"]
        if "eval_loss" in a:
            assert b["eval_loss"] == pytest.approx(a["eval_loss"], abs=EVAL_LOSS_TOLERANCE)
            assert b["eval_accuracy"] == a["eval_accuracy"]  # 25 rows gathered, none twice
    m1 = json.loads((runs / "one" / "metrics.json").read_text())
    m2 = json.loads((runs / "two" / "metrics.json").read_text())
    assert m2["test"]["confusion_matrix"] == m1["test"]["confusion_matrix"]
    assert sum(map(sum, m2["test"]["confusion_matrix"]["matrix"])) == 25
    assert m1["test"]["accuracy"] > 0.9  # a run that learned, not one stuck on the majority
    assert m2["training"]["train_loss"] == pytest.approx(m1["training"]["train_loss"], abs=1e-5)
    card = json.loads((runs / "two" / "run_card.json").read_text())
    assert card["status"] == "completed"
    assert card["processes"] == {
        "world_size": 2,
        "strategy": "ddp",
        "nodes": 1,
        "processes_per_node": 2,
        "backend": "gloo",
        "per_device_batch": 10,
        "gradient_accumulation": 1,
        "global_batch": 20,
    }
    # Rank 0 alone writes: the same files as one process, plus rank 1's RNG state in each
    # checkpoint (the Trainer's, for an exact resume).
    extra = _files(runs / "two") - _files(runs / "one")
    assert extra and all(name.endswith("rng_state_1.pth") for name in extra)
    assert _files(runs / "one") <= _files(runs / "two")


def test_a_refusal_on_rank_0_is_one_line_naming_the_rank(config: Path, tmp_path: Path) -> None:
    (tmp_path / "runs" / "one").mkdir(parents=True)  # not a tunelab run: never overwritten
    result = run("train", str(config), "--nproc", "2", "train.batch_size=10", cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert (
        lines[0].startswith("error: rank 0: config: output: run directory")
        and "already exists" in lines[0]
    )


def test_a_method_that_cannot_run_in_several_processes_is_refused_before_any_starts(
    config: Path, tmp_path: Path
) -> None:
    result = run("train", str(config), "--nproc", "2", "method.name=gradual_unfreeze", cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "method gradual_unfreeze trains in one process only" in lines[0]
    assert not (tmp_path / "runs").exists()


def _worker(tmp_path: Path, rank: int) -> int:
    """The pid of this test's training process of `rank`."""
    found = subprocess.run(["pgrep", "-f", "tunelab train"], capture_output=True, text=True)
    for pid in map(int, found.stdout.split()):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ and str(tmp_path).encode() in cmdline:
            return pid
    raise AssertionError(f"rank {rank}'s process was not found")


@pytest.mark.parametrize("rank_0", ["answers", "frozen"])
def test_a_killed_worker_ends_the_run_in_one_line_naming_its_rank(
    config: Path, tmp_path: Path, rank_0: str
) -> None:
    """Rank 1 is killed. Rank 0 either ends on the launcher's SIGTERM and writes its card, or is
    frozen (as when blocked in a collective, where Python cannot run its handler) until the
    launcher kills it: then the launcher closes the card it left running."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    launcher = subprocess.Popen(
        [TUNELAB, "train", str(config), "--nproc", "2", "train.batch_size=10", "train.epochs=200"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    card = tmp_path / "runs" / "one" / "run_card.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (tmp_path / "runs" / "one" / "checkpoints").is_dir():
        time.sleep(0.5)
    victim = _worker(tmp_path, 1)
    if rank_0 == "frozen":
        os.kill(_worker(tmp_path, 0), signal.SIGSTOP)
    os.kill(victim, signal.SIGKILL)
    _, stderr = launcher.communicate(timeout=300)
    assert launcher.returncode == 1
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("[rank")]
    assert lines[-1].startswith("error: training process rank 1 failed, killed by SIGKILL"), stderr[
        -2000:
    ]
    written = json.loads(card.read_text())
    if rank_0 == "frozen":
        assert written["status"] == "failed"
        assert written["reason"].startswith("training process rank 1 failed, killed by SIGKILL")
    else:
        assert written["status"] in ("failed", "interrupted")


def test_multi_node_flags_reach_torchrun_as_its_own_options() -> None:
    """Two machines cannot be tried here: check the wiring into torchrun's own parser instead."""
    from torch.distributed.run import get_args_parser

    from tunelab.workflows.launch import Launch, torchrun_arguments

    launch = Launch(nproc=8, nnodes=2, node_rank=1, master_addr="10.0.0.1", master_port=29400)
    args = get_args_parser().parse_args(
        torchrun_arguments(launch, ["train", "my.yaml", "train.lr=1e-4"])
    )
    assert (args.nproc_per_node, args.nnodes, args.node_rank) == ("8", "2", 1)
    assert (args.master_addr, args.master_port, args.standalone) == ("10.0.0.1", 29400, False)
    assert args.no_python and args.training_script == sys.executable
    assert args.training_script_args == ["-m", "tunelab", "train", "my.yaml", "train.lr=1e-4"]
    local = get_args_parser().parse_args(torchrun_arguments(Launch(nproc=2), ["train", "x.yaml"]))
    assert local.standalone and local.nproc_per_node == "2"  # one machine: a free local port
    assert Launch(nproc=2, nnodes=2, node_rank=2).problems() == [
        "--node-rank must be in 0..1 for --nnodes 2; got 2."
    ]


def test_fsdp_and_deepspeed_settings_become_the_trainers_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_bert_dir: Path
) -> None:
    """FSDP and DeepSpeed need GPUs, so they cannot run here; what can be checked is that the
    settings become the Trainer's own arguments, which transformers accepts, and the refusals."""
    from transformers import AutoModelForSequenceClassification, TrainingArguments

    from tunelab.config import DistributedConfig
    from tunelab.training.distributed import strategy_arguments, strategy_problems

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    assert strategy_arguments(DistributedConfig(strategy="fsdp"), model) == {}  # one process
    monkeypatch.setenv("WORLD_SIZE", "2")
    fsdp = strategy_arguments(DistributedConfig(strategy="fsdp", sharding="shard_grad_op"), model)
    assert fsdp["fsdp_config"]["transformer_layer_cls_to_wrap"] == ["BertEmbeddings", "BertLayer"]
    assert (
        fsdp["fsdp_config"]["reshard_after_forward"] is False
        and fsdp["fsdp_config"]["version"] == 2
    )
    monkeypatch.delenv("WORLD_SIZE")  # TrainingArguments reads it too
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, **fsdp)
    assert args.fsdp_plugin_args["fsdp_version"] == 2
    assert args.fsdp_plugin_args["transformer_cls_names_to_wrap"] == "BertEmbeddings,BertLayer"
    monkeypatch.setenv("WORLD_SIZE", "2")
    zero = strategy_arguments(
        DistributedConfig(strategy="deepspeed", zero_stage=3, cpu_offload=True), model
    )
    assert zero["deepspeed"]["zero_optimization"] == {
        "stage": 3,
        "offload_optimizer": {"device": "cpu", "pin_memory": True},
        "offload_param": {"device": "cpu", "pin_memory": True},
    }
    problems = strategy_problems(DistributedConfig(strategy="fsdp"), method_quantized=True)
    assert any("4-bit base" in p for p in problems)
    if not __import__("torch").cuda.is_available():
        assert any("needs GPUs" in p for p in problems)
    assert strategy_problems(DistributedConfig(), method_quantized=True) == []


def test_a_two_process_run_killed_outright_resumes_to_the_uninterrupted_answer(
    config: Path, tmp_path: Path
) -> None:
    """Every process of a 2-process run is SIGKILLed (a machine lost) after its second epoch's
    checkpoint is complete; `--resume --nproc 2` ends with the loss curve and test result of
    a run never interrupted (one process with the same global batch: the same answer)."""
    straight = run("train", str(config), cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr[-2000:]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    args = ["train", str(config), "--nproc", "2", "train.batch_size=10", "output.name=two"]
    launcher = subprocess.Popen(
        [TUNELAB, *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    record = tmp_path / "runs" / "two" / "checkpoints" / "checkpoint-20" / "tunelab_checkpoint.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not record.exists() and launcher.poll() is None:
        time.sleep(0.02)
    assert launcher.poll() is None, "the run ended before it could be killed"
    # torchrun starts its workers in sessions of their own: kill every process of this run
    for pid in map(
        int,
        subprocess.run(["pgrep", "-f", str(config)], capture_output=True, text=True).stdout.split(),
    ):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    launcher.wait(timeout=60)
    runs = tmp_path / "runs"
    assert json.loads((runs / "two" / "run_card.json").read_text())["status"] == "running"
    resumed = run(*args, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "checkpoint-" in resumed.stdout  # it continued, it did not start over
    first, second = _log(runs / "one"), _log(runs / "two")
    curve = {e["step"]: e["loss"] for e in first if "loss" in e}
    # the killed run may have logged a step or two past its checkpoint: the resumed entry is last
    again = {e["step"]: e["loss"] for e in second if "loss" in e and e["step"] > 20}
    assert sorted(again) == [s for s in sorted(curve) if s > 20]
    for step, loss in again.items():
        assert loss == pytest.approx(curve[step], abs=TRAIN_LOSS_TOLERANCE), step
    m1 = json.loads((runs / "one" / "metrics.json").read_text())
    m2 = json.loads((runs / "two" / "metrics.json").read_text())
    assert m2["training"]["train_loss"] == pytest.approx(m1["training"]["train_loss"], abs=1e-5)
    assert m2["test"]["confusion_matrix"] == m1["test"]["confusion_matrix"]
    assert json.loads((runs / "two" / "run_card.json").read_text())["status"] == "completed"
