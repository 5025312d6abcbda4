"""Packing short examples into shared rows without letting them see each other.

A batch's examples are laid end to end into as few rows of at most `max_length` tokens as fit
(first-fit, longest first). Each example keeps its own positions (0, 1, …) and attends only to
itself through a block-diagonal causal mask, so the loss equals the unpacked loss while far
fewer pad tokens go through the model. The 4-D boolean mask is honoured by PyTorch's SDPA
attention; the eager and flash paths read masks differently, so packing refuses them.
"""

from __future__ import annotations

from typing import Any

import torch

from tunelab.errors import ConfigError

SUPPORTED_ATTENTION = ("sdpa",)


def check_attention(model: Any) -> None:
    implementation = getattr(model.config, "_attn_implementation", None)
    if implementation not in SUPPORTED_ATTENTION:
        raise ConfigError(
            f"task.packing needs SDPA attention to keep packed examples apart; this model uses "
            f"'{implementation}'. Set task.packing=false."
        )


class PackedCollator:
    def __init__(self, pad_token_id: int, max_length: int) -> None:
        self.pad_token_id = pad_token_id
        self.max_length = max_length

    def rows(self, lengths: list[int]) -> list[list[int]]:
        """Example indices per row: first fit, longest first."""
        rows: list[list[int]] = []
        room: list[int] = []
        for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
            for r, free in enumerate(room):
                if lengths[index] <= free:
                    rows[r].append(index)
                    room[r] -= lengths[index]
                    break
            else:
                rows.append([index])
                room.append(self.max_length - lengths[index])
        return rows

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        lengths = [len(f["input_ids"]) for f in features]
        layout = self.rows(lengths)
        width = max(sum(lengths[i] for i in row) for row in layout)
        count = len(layout)
        input_ids = torch.full((count, width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((count, width), -100, dtype=torch.long)
        positions = torch.zeros((count, width), dtype=torch.long)
        segment = torch.zeros((count, width), dtype=torch.long)  # 0 = padding
        for r, row in enumerate(layout):
            at = 0
            for number, index in enumerate(row, start=1):
                n = lengths[index]
                input_ids[r, at : at + n] = torch.tensor(features[index]["input_ids"])
                example_labels = torch.tensor(features[index]["labels"])
                example_labels[
                    0
                ] = -100  # never predict an example's first token from the previous one
                labels[r, at : at + n] = example_labels
                positions[r, at : at + n] = torch.arange(n)
                segment[r, at : at + n] = number
                at += n
        causal = torch.tril(torch.ones(width, width, dtype=torch.bool))
        same = segment[:, :, None] == segment[:, None, :]
        mask = same & causal & (segment[:, :, None] > 0)
        mask |= torch.eye(
            width, dtype=torch.bool
        )  # padding attends to itself: no empty softmax rows
        return {
            "input_ids": input_ids,
            "labels": labels,
            "position_ids": positions,
            "attention_mask": mask[:, None, :, :],
        }
