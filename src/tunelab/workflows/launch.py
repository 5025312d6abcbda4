"""`tunelab train CONFIG --nproc N [--nnodes M --node-rank R --master-addr HOST --master-port P]`:
start N training processes through torch's own launcher (torchrun's `torch.distributed.run`),
each running `python -m tunelab train CONFIG ...`.

The config is validated once here, before any worker starts, so a bad config is one line and no
process group. A worker that fails ends the whole run (torchelastic stops the others); the
launcher then prints one line naming the first rank that failed and why (its own one-line error,
handed over through torchelastic's error file, or the signal that killed it) and exits 2 for a
user error, 1 otherwise. `torchrun -m tunelab train ...` and `accelerate launch -m tunelab train ...`
start the same workers without this wrapper.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tunelab.config import RunConfig
from tunelab.errors import ConfigError, WorkerError


@dataclass(frozen=True)
class Launch:
    nproc: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500

    @property
    def needed(self) -> bool:
        return self.nproc > 1 or self.nnodes > 1

    def problems(self) -> list[str]:
        found = []
        if self.nproc < 1:
            found.append(f"--nproc must be at least 1; got {self.nproc}.")
        if self.nnodes < 1:
            found.append(f"--nnodes must be at least 1; got {self.nnodes}.")
        if not 0 <= self.node_rank < max(self.nnodes, 1):
            found.append(
                f"--node-rank must be in 0..{self.nnodes - 1} for --nnodes {self.nnodes}; got {self.node_rank}."
            )
        if not 0 < self.master_port < 65536:
            found.append(f"--master-port must be a TCP port (1-65535); got {self.master_port}.")
        return found


def torchrun_arguments(launch: Launch, command: list[str]) -> list[str]:
    """torchrun's own flags for `launch`, then `-m tunelab <command>`."""
    flags = [
        f"--nproc-per-node={launch.nproc}",
        f"--nnodes={launch.nnodes}",
        f"--node-rank={launch.node_rank}",
        f"--master-addr={launch.master_addr}",
        f"--master-port={launch.master_port}",
    ]
    if launch.nnodes == 1 and launch.master_port == 29500:
        flags = [f"--nproc-per-node={launch.nproc}", "--standalone"]  # a free local port
    return [*flags, "--no-python", sys.executable, "-m", "tunelab", *command]


def multi_process_problems(cfg: RunConfig, processes: int) -> list[str]:
    """What stops `cfg` from training in `processes` processes (checked by the launcher and by
    every worker, whichever launcher started it)."""
    if processes <= 1:
        return []
    from tunelab.methods import method_for

    reason = method_for(cfg).one_process_only
    if reason:
        return [
            f"method {cfg.method.name} trains in one process only: {reason}. Drop --nproc/--nnodes, "
            "or use method full (with llrd for per-layer rates)."
        ]
    return []


def launch_workers(launch: Launch, command: list[str], cfg: RunConfig) -> None:
    """Run the workers to the end; raise WorkerError with one line when one fails."""
    problems = launch.problems() + multi_process_problems(cfg, launch.nproc * launch.nnodes)
    if problems:
        raise ConfigError(problems)
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    # torchrun logs each failure as a banner and a warning per worker; the one line below says it.
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    cores = os.cpu_count() or 1
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // launch.nproc)))
    args = get_args_parser().parse_args(torchrun_arguments(launch, command))
    started = datetime.now(UTC).replace(microsecond=0)
    try:
        run(args)
    except ChildFailedError as exc:
        line, user_error = _failure_line(exc)
        from tunelab.runs.place import close_abandoned

        # rank 0 killed while blocked in a collective never wrote its own card: say it here
        close_abandoned(cfg.output.dir, started, line)
        raise WorkerError(line, user_error=user_error) from None


def _failure_line(exc: Any) -> tuple[str, bool]:
    """The one line for a failed run (the first rank's own error, else what stopped which rank)
    and whether it was the user's error."""
    rank, failure = exc.get_first_failure()
    said = sorted(  # a worker's own one-line error beats a rank stopped because of it
        r
        for r, f in exc.failures.items()
        if f.exitcode == 2 and isinstance(f.message, str) and f.message.startswith("error: ")
    )
    if said:
        rank, failure = said[0], exc.failures[said[0]]
    others = len(exc.failures) - 1
    also = f" ({others} other rank(s) stopped with it)" if others > 0 else ""
    message = failure.message if isinstance(failure.message, str) else ""
    if failure.exitcode == 2 and message.startswith("error: "):  # the worker's own line
        return f"rank {rank}: {message.removeprefix('error: ')}", True
    if failure.exitcode < 0:
        cause = f"killed by {failure.signal_name()}"
    elif message and not message.startswith("To enable traceback"):
        cause = f"exit code {failure.exitcode}: {message}"
    else:
        cause = f"exit code {failure.exitcode}; its traceback is above"
    return (
        f"training process rank {rank} failed, {cause}{also}. Fix the cause and run again; "
        "--resume continues from the last complete checkpoint, if one was written."
    ), False


__all__ = ["Launch", "launch_workers", "multi_process_problems", "torchrun_arguments"]
