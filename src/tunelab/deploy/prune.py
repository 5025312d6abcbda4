"""Global magnitude pruning of the Linear weights in a model's body, made permanent.

The head (classifier, BERT's pooler, LM head) is left whole: it is small and every output
depends on it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.utils import prune


def body_linears(model: Any) -> list[tuple[str, torch.nn.Linear]]:
    """Linear layers but the head and anything sharing weights with the embeddings (tied LM heads)."""
    if hasattr(model, "get_base_model"):  # a PeftModel: prune the model under the adapter
        model = model.get_base_model()
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    tied = {id(embeddings.weight)} if embeddings is not None else set()
    # BERT's pooler feeds only the classifier: in MiniLM its weights are so small that 60% global
    # pruning zeroed all of it, and every text got the same label. It is head, not body.
    head_names = {"classifier", "score", "lm_head", "qa_outputs", "pooler"}
    return [
        (n, m)
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear)
        and m is not head
        and id(m.weight) not in tied
        and not head_names.intersection(n.split("."))
    ]


def prune_global_magnitude(model: Any, sparsity: float) -> dict[str, Any]:
    """Zero the `sparsity` share of smallest-magnitude body Linear weights; returns what was measured."""
    linears = body_linears(model)
    if not linears:
        from tunelab.errors import ModelError

        raise ModelError(
            f"{type(model).__name__} has no torch Linear layers in its body to prune (GPT-2 style models use Conv1D)."
        )
    parameters = [(module, "weight") for _, module in linears]
    prune.global_unstructured(parameters, pruning_method=prune.L1Unstructured, amount=sparsity)
    for module, name in parameters:
        prune.remove(module, name)  # weight = weight_orig * mask, stored as a plain tensor
    return measured_sparsity(model, linears)


def measured_sparsity(model: Any, linears: list[tuple[str, torch.nn.Linear]]) -> dict[str, Any]:
    pruned_zeros = sum(int((m.weight == 0).sum()) for _, m in linears)
    pruned_total = sum(m.weight.numel() for _, m in linears)
    all_zeros = sum(int((p == 0).sum()) for p in model.parameters())
    all_total = sum(p.numel() for p in model.parameters())
    return {
        "layers": len(linears),
        "pruned_weights": pruned_total,
        "sparsity_of_pruned_layers": pruned_zeros / pruned_total,
        "sparsity_of_all_parameters": all_zeros / all_total,
    }
