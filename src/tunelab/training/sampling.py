"""Length-bucketed batches in random order: little padding without a drift in length.

Stock `group_by_length` (transformers' LengthGroupedSampler) sorts each mega-batch of 50 batches
by length and yields its batches in that order, so training walks from the longest examples to
the shortest every 50 steps. Where lengths mean something (SST-2's short phrases vs its full
sentences) the model drifts with them: dev accuracy dipped after every run of short batches.
Here the same buckets are yielded in a random order, so each stretch of training sees every
length while each batch still holds similar lengths (benchmarks/train_speed.py measures both).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler
from transformers.trainer_pt_utils import LengthGroupedSampler


class ShuffledLengthBuckets(Sampler[int]):
    """Indices whose consecutive `batch_size` chunks are batches of similar length, in random order.

    Deterministic for a given seed and epoch (the Trainer calls set_epoch), so a resumed run
    replays the same order and skips exactly the batches it had already trained on.
    """

    def __init__(
        self, lengths: Sequence[int], batch_size: int, seed: int, mega_batch_mult: int = 50
    ) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self.mega = max(1, min(mega_batch_mult, len(self.lengths) // (batch_size * 4) or 1))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        size = self.mega * self.batch_size
        batches: list[list[int]] = []
        for start in range(0, len(order), size):
            mega = sorted(order[start : start + size], key=lambda i: -self.lengths[i])
            batches += [mega[i : i + self.batch_size] for i in range(0, len(mega), self.batch_size)]
        full = [b for b in batches if len(b) == self.batch_size]
        partial = [b for b in batches if len(b) < self.batch_size]  # at most one, kept last
        for position in torch.randperm(len(full), generator=generator).tolist():
            yield from full[position]
        for batch in partial:
            yield from batch


class SeededLengthGroupedSampler(LengthGroupedSampler):
    """transformers' LengthGroupedSampler, its order drawn from a generator seeded with seed + epoch.

    The stock sampler draws from the global RNG, whose state when an epoch starts depends on
    everything the process did before (dropout, evaluation), so a run resumed mid-way through its
    second epoch saw other batches than the run it continues. Same grouping, reproducible order.
    """

    def __init__(self, batch_size: int, lengths: Sequence[int], seed: int) -> None:
        super().__init__(batch_size, lengths=list(lengths))
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        self.generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return super().__iter__()
