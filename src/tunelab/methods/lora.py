"""LoRA (peft): low-rank updates beside the attention projections; the adapter alone is saved.

Variants are peft's own, as `method.lora.*`: DoRA (`use_dora`), rsLoRA (`use_rslora`), the
adapter's start (`init`: default, gaussian, pissa, olora), extra fully trained modules
(`modules_to_save`) and `target_modules: all-linear`.

PiSSA and OLoRA start the adapter from the principal singular vectors (a QR decomposition for
OLoRA) of each weight and leave the residual in the base, so the base weights change. The adapter
as it was before training is written aside when the model is wrapped, and at save peft converts
the trained one against it into a plain LoRA adapter of rank 2r
(`path_initial_model_for_weight_conversion`) that applies to the unchanged base model: a run
reloads, merges, exports and serves like any LoRA run.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
import weakref
from pathlib import Path
from typing import Any

from peft import LoraConfig
from transformers import PreTrainedModel

from tunelab.config import RunConfig
from tunelab.errors import ConfigError
from tunelab.methods.base import METHODS, MethodSpec
from tunelab.methods.peft import LORA_TARGETS, new_modules, task_type, wrap


def apply(model: PreTrainedModel, cfg: RunConfig) -> PreTrainedModel:
    s = cfg.method.lora
    targets = s.target_modules or LORA_TARGETS.get(model.config.model_type)
    fresh = new_modules(model) or []  # a new head must train and be saved, whatever is asked
    _check_modules_exist(model, s.modules_to_save or [])
    saved = [*fresh, *(m for m in s.modules_to_save or () if m not in fresh)]
    config = LoraConfig(
        modules_to_save=saved or None,
        task_type=task_type(model),
        r=s.r,
        lora_alpha=s.alpha,
        lora_dropout=s.dropout,
        target_modules=targets,
        bias=s.bias,
        use_dora=s.use_dora,
        use_rslora=s.use_rslora,
        init_lora_weights=INIT[s.init],
    )
    wrapped = wrap(model, config)
    if s.init in REWRITES_BASE:
        _keep_initial_adapter(wrapped)
    return wrapped


def _keep_initial_adapter(model: Any) -> None:
    """Write the untrained adapter aside; removed with the model (tunelab's own temp folder)."""
    folder = Path(tempfile.mkdtemp(prefix="tunelab-lora-init-"))
    model.save_pretrained(folder / "initial")
    model.tunelab_initial_adapter = folder / "initial"
    # The layers are initialised; from here the config must say so, or loading a checkpoint
    # (the best one at the end, or --resume) would decompose the residual base a second time.
    for adapter in model.peft_config.values():
        adapter.init_lora_weights = True
    weakref.finalize(model, shutil.rmtree, folder, True)


def save(model: Any, directory: Path) -> None:
    """save_pretrained; a PiSSA/OLoRA adapter converted to plain LoRA on the unchanged base."""
    initial = getattr(model, "tunelab_initial_adapter", None)
    if initial is None:
        model.save_pretrained(directory)
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*init_lora_weights.*")
        model.save_pretrained(directory, path_initial_model_for_weight_conversion=str(initial))
    _restore_trained_modules(model, Path(directory))


def _restore_trained_modules(model: Any, directory: Path) -> None:
    """peft 0.21's conversion keeps the lora_A/lora_B tensors only: the fully trained modules
    (a new head, modules_to_save) are put back beside them, as a plain save writes them."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file, save_file

    path = directory / "adapter_model.safetensors"
    converted = load_file(path)
    others = {
        key: value.detach().contiguous().clone()
        for key, value in get_peft_model_state_dict(model).items()
        if "lora_A" not in key and "lora_B" not in key and key not in converted
    }
    if others:
        save_file({**converted, **others}, path, metadata={"format": "pt"})


def settings_problems(cfg: RunConfig) -> list[str]:
    s = cfg.method.lora
    if s.use_dora and s.init in REWRITES_BASE:
        return [
            f"method.lora.use_dora with init={s.init}: DoRA normalises by each base weight, which "
            f"{s.init} rewrites, so the adapter cannot be converted back to the unchanged base. Use one of the two."
        ]
    return []


def _check_modules_exist(model: PreTrainedModel, wanted: list[str]) -> None:
    """peft matches modules_to_save by name suffix and ignores a name that matches nothing."""
    names = [name for name, _ in model.named_modules() if name]
    for module in wanted:
        if not any(name == module or name.endswith("." + module) for name in names):
            top = ", ".join(name for name in names if "." not in name)
            raise ConfigError(
                f"method.lora.modules_to_save: {type(model).__name__} has no module named '{module}'. "
                f"Use a module name or suffix; its top-level modules are: {top}."
            )


INIT: dict[str, Any] = {  # -> peft init_lora_weights
    "default": True,
    "gaussian": "gaussian",
    "pissa": "pissa",  # exact SVD of each adapted weight
    "olora": "olora",
}
REWRITES_BASE = frozenset({"pissa", "olora"})


# At 1e-3 LoRA needed ~4x more steps than at 3e-3 to leave the majority class (MiniLM/SST-2).
METHODS.add(
    "lora",
    MethodSpec(
        "lora",
        apply,
        default_lr=3e-3,
        adapter_only=True,
        settings="lora",
        save=save,
        checks=settings_problems,
    ),
)
