"""Several training processes, as torchrun / `accelerate launch` / `tunelab train --nproc` start them.

The engine is the Trainer's own (Accelerate under it: DDP, FSDP, DeepSpeed); this module only
tells the workflow which process it is and lets rank 0 share what it alone decides (the run
directory). Every process prepares the same data (deterministic from the seed), the main process
first, so caches written on the way (a named dataset's Parquet copies) are written once; only the
main process writes the run directory.

Read from the environment torchrun sets: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
GROUP_RANK (the node), MASTER_ADDR/PORT. With none of them, this is the one process of a plain run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from tunelab.config import DistributedConfig

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    node_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def nodes(self) -> int:
        return max(1, self.world_size // max(1, self.local_world_size))

    def record(
        self, backend: str | None, per_device_batch: int, accumulation: int, strategy: str = "ddp"
    ) -> dict[str, Any]:
        """For the run card: who trained, how the model was shared, the batch one step saw."""
        return {
            "world_size": self.world_size,
            "strategy": strategy if self.distributed else None,
            "nodes": self.nodes,
            "processes_per_node": self.local_world_size,
            "backend": backend,
            "per_device_batch": per_device_batch,
            "gradient_accumulation": accumulation,
            "global_batch": per_device_batch * self.world_size * accumulation,
        }


def world() -> World:
    env = os.environ
    size = int(env.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return World()
    return World(
        rank=int(env.get("RANK", "0")),
        world_size=size,
        local_rank=int(env.get("LOCAL_RANK", "0")),
        local_world_size=int(env.get("LOCAL_WORLD_SIZE", str(size))),
        node_rank=int(env.get("GROUP_RANK", env.get("NODE_RANK", "0"))),
    )


def backend() -> str | None:
    """The process group's backend: nccl on CUDA, gloo on CPU; None for one process."""
    if not world().distributed:
        return None
    import torch

    return "nccl" if torch.cuda.is_available() else "gloo"


def start() -> World:
    """Join the process group once (Accelerate's PartialState, which the Trainer then reuses)."""
    here = world()
    if here.distributed:
        import torch.distributed as dist
        from accelerate import PartialState

        if not dist.is_initialized():
            PartialState(backend=backend())
    return here


def share(value: T) -> T:
    """Rank 0's `value` on every rank (one broadcast); the value itself in a plain run."""
    if not world().distributed:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def decide(choose: Callable[[], T]) -> T:
    """Rank 0 runs `choose`; every rank gets its value, or raises its one-line error (so a refusal
    on rank 0, a run directory that exists, does not leave the others waiting forever)."""
    here = world()
    if not here.distributed:
        return choose()
    from tunelab.errors import TunelabError

    outcome: tuple[Any, ...] = ()
    if here.is_main:
        try:
            outcome = ("value", choose())
        except TunelabError as exc:
            outcome = ("error", exc)
    outcome = share(outcome)
    if outcome[0] == "error":
        error = outcome[1]
        # rank 0 reports it; the others end quietly (see the CLI), so that the launcher names
        # rank 0 and torchelastic does not stop rank 0 before it has said why
        error.decided_by_rank_0 = not here.is_main
        raise error
    return cast(T, outcome[1])


def barrier() -> None:
    if world().distributed:
        import torch.distributed as dist

        dist.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """The main process runs the block first, the others after it (they then read its caches)."""
    here = world()
    if not here.distributed:
        yield
        return
    if not here.is_main:
        barrier()
    try:
        yield
    finally:
        if here.is_main:
            barrier()


def strategy_arguments(settings: DistributedConfig, model: Any) -> dict[str, Any]:
    """TrainingArguments for train.distributed: FSDP2 or DeepSpeed ZeRO as the Trainer names
    them; nothing for DDP (the Trainer's default) or for one process."""
    if not world().distributed or settings.strategy == "ddp":
        return {}
    if settings.strategy == "fsdp":
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        layers = sorted(getattr(base, "_no_split_modules", None) or [])
        fsdp_config: dict[str, Any] = {
            "version": 2,
            "reshard_after_forward": settings.sharding == "full_shard",
            "cpu_offload": settings.cpu_offload,
        }
        if layers:  # one FSDP unit per transformer block, as the model class names them
            fsdp_config |= {
                "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                "transformer_layer_cls_to_wrap": layers,
            }
        return {"fsdp": settings.sharding, "fsdp_config": fsdp_config}
    offload = {"device": "cpu", "pin_memory": True} if settings.cpu_offload else None
    zero: dict[str, Any] = {"stage": settings.zero_stage}
    if offload:
        zero["offload_optimizer"] = offload
        if settings.zero_stage == 3:
            zero["offload_param"] = offload
    return {
        "deepspeed": {
            "zero_optimization": zero,
            # "auto": the Trainer fills these from its own arguments, so they cannot disagree
            "train_micro_batch_size_per_gpu": "auto",
            "train_batch_size": "auto",
            "gradient_accumulation_steps": "auto",
            "gradient_clipping": "auto",
            "bf16": {"enabled": "auto"},
            "fp16": {"enabled": "auto"},
        }
    }


def strategy_problems(settings: DistributedConfig, method_quantized: bool) -> list[str]:
    """What train.distributed cannot do here, in one line each (run by config validate)."""
    import importlib.util

    found = []
    if settings.strategy == "fsdp" and not _accelerator_present():
        found.append(
            "train.distributed.strategy=fsdp needs GPUs (CUDA or another accelerator): Accelerate runs FSDP "
            "there only, and on a CPU the Trainer would quietly train with DDP. Use strategy ddp on a CPU."
        )
    if settings.strategy == "deepspeed" and importlib.util.find_spec("deepspeed") is None:
        found.append(
            "train.distributed.strategy=deepspeed needs DeepSpeed, which is not installed: pip install deepspeed "
            "(it builds CUDA kernels: a GPU machine). Or use strategy fsdp or ddp."
        )
    if method_quantized and (
        settings.strategy == "fsdp"
        or (settings.strategy == "deepspeed" and settings.zero_stage == 3)
    ):
        found.append(
            f"train.distributed.strategy={settings.strategy} shards the weights, which a 4-bit base "
            "(method qlora) cannot be split into. Use strategy ddp (or deepspeed with zero_stage 1 or 2)."
        )
    return found


def _accelerator_present() -> bool:
    import torch

    xpu = getattr(torch, "xpu", None)
    return torch.cuda.is_available() or bool(xpu is not None and xpu.is_available())


def report_failure(message: str) -> bool:
    """In a launched worker, hand the one-line error to the launcher (torchelastic's error file),
    which names the rank; True when handed over, so the worker need not print it as well."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path or not world().distributed:
        return False
    try:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"message": message, "timestamp": int(time.time())}, handle)
    except OSError:
        return False
    return True


__all__ = [
    "World",
    "backend",
    "barrier",
    "decide",
    "main_first",
    "report_failure",
    "share",
    "start",
    "world",
]
