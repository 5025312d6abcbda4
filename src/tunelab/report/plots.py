"""Figures for the HTML report, as base64 PNG data URIs (the report is one self-contained file)."""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI

import matplotlib.pyplot as plt
import numpy as np

Curves = dict[str, list[tuple[float, float]]]


def figure_uri(figure: Any) -> str:
    """A finished matplotlib figure as a PNG data URI (and closed)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def curves(series: Curves, title: str, ylabel: str) -> str | None:
    """One line per named series of (step, value) points; None when there is nothing to draw."""
    drawn = {name: points for name, points in series.items() if points}
    if not drawn:
        return None
    figure, axis = plt.subplots(figsize=(6.4, 3.4))
    for name, points in drawn.items():
        steps, values = zip(*points, strict=True)
        axis.plot(steps, values, marker="o" if len(points) < 30 else None, markersize=3, label=name)
    axis.set_xlabel("optimizer step")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return figure_uri(figure)


def confusion_heatmap(labels: list[str], matrix: list[list[int]]) -> str:
    counts = np.asarray(matrix, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    size = 1.2 + 0.55 * len(labels)
    figure, axis = plt.subplots(figsize=(size + 1.5, size))
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    if len(labels) <= 20:
        for i in range(len(labels)):
            for j in range(len(labels)):
                colour = "white" if shares[i, j] > 0.6 else "black"
                axis.text(
                    j, i, f"{int(counts[i, j])}", ha="center", va="center", color=colour, fontsize=8
                )
    figure.colorbar(image, ax=axis, label="share of the true class")
    axis.set_title("confusion matrix (counts; colour = row share)")
    return figure_uri(figure)


def reliability(bins: list[dict[str, float]], ece: float) -> str:
    figure, axis = plt.subplots(figsize=(4.2, 4.0))
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    if bins:
        centres = [(b["low"] + b["high"]) / 2 for b in bins]
        widths = [b["high"] - b["low"] for b in bins]
        axis.bar(
            centres,
            [b["accuracy"] for b in bins],
            width=widths,
            alpha=0.6,
            edgecolor="black",
            label="accuracy",
        )
        axis.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            marker="o",
            color="C1",
            label="per bin",
        )
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_xlabel("confidence")
    axis.set_ylabel("accuracy")
    axis.set_title(f"reliability (ECE {ece:.3f})")
    axis.legend(fontsize=8, loc="upper left")
    return figure_uri(figure)


def histogram(counts: list[int], edges: list[float], title: str, xlabel: str) -> str:
    figure, axis = plt.subplots(figsize=(5.0, 3.0))
    axis.bar(edges[:-1], counts, width=np.diff(edges), align="edge", edgecolor="black", alpha=0.7)
    axis.set_xlabel(xlabel)
    axis.set_ylabel("examples")
    axis.set_title(title)
    return figure_uri(figure)
