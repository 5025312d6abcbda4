"""Rebuild data/general_text/wikitext2_sample.txt from the shared WikiText-2 copy.

The sample is general-domain text for measuring catastrophic forgetting (tunelab.evaluation.
forgetting). Passages are whole prose lines of wiki.valid.raw (headings and lines under 80
characters skipped), taken at evenly spaced ranks so that many articles are represented;
no randomness, so a rebuild is byte-identical. See data/general_text/PROVENANCE.md.

python scripts/make_general_text_sample.py [--source ../shared/data/wikitext2_raw/wiki.valid.raw] [--passages 180]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from tunelab.evaluation.forgetting import read_general_text

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "wikitext2_raw" / "wiki.valid.raw"


def evenly_spaced(items: list[str], count: int) -> list[str]:
    """`count` items at ranks i * len / count: spread over the whole file, order kept."""
    if count >= len(items):
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--passages", type=int, default=180)
    parser.add_argument("--min-chars", type=int, default=80)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "data" / "general_text" / "wikitext2_sample.txt"
    )
    args = parser.parse_args()
    eligible = read_general_text(args.source, max_passages=None, min_chars=args.min_chars)
    sample = evenly_spaced(eligible, args.passages)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(p + "\n" for p in sample), encoding="utf-8")
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(
        f"wrote {len(sample)} of {len(eligible)} eligible passages "
        f"({args.out.stat().st_size} bytes, sha256 {digest}) to {args.out}"
    )


if __name__ == "__main__":
    main()
