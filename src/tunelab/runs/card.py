"""run_card.json: what a later reader needs to trust or repeat a run."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import sys
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import torch

PACKAGES = (
    "tunelab",
    "torch",
    "transformers",
    "accelerate",
    "datasets",
    "tokenizers",
    "safetensors",
    "numpy",
    "pandas",
    "scikit-learn",
    "peft",
)


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def split_sha256(frame: pd.DataFrame) -> str:
    """Identity of a split: its texts and labels in order, so two runs can be checked for the same split."""
    digest = hashlib.sha256()
    for text, label in zip(frame["text"], frame["label"], strict=True):
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def base_card(seed: int, precision: str, max_length: int) -> dict[str, Any]:
    return {
        "tool": "tunelab",  # what makes a directory a tunelab run (rundir.is_tunelab_run)
        "status": "running",
        "pid": os.getpid(),  # with host: a card still "running" whose process is gone was interrupted
        "host": os.uname().nodename,
        "started_at": now(),
        "command": sys.argv,
        "python": sys.version.split()[0],
        "packages": package_versions(),
        "hardware": hardware(),
        "seed": seed,
        "precision": precision,
        "max_length": max_length,
    }
