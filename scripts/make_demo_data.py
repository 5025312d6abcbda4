"""Rebuild the bundled demo data in data/sst2/ from the shared SST-2 copy (see data/sst2/PROVENANCE.md).

python scripts/make_demo_data.py [--shared ../shared/data/sst2] [--rows 20000]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data" / "sst2")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = ROOT / "data" / "sst2"
    out.mkdir(parents=True, exist_ok=True)
    # SST-2 has no quote characters, so quoting is off and texts stay byte-identical.
    train = pd.read_csv(
        args.shared / "train.tsv", sep="\t", dtype=str, keep_default_na=False, quoting=3
    )
    _, sample = train_test_split(
        train, test_size=args.rows, stratify=train["label"], random_state=args.seed
    )
    sample.sort_index().to_csv(out / "train_sample.tsv", sep="\t", index=False, quoting=3)
    shutil.copyfile(args.shared / "dev.tsv", out / "dev.tsv")
    print(f"wrote {len(sample)} train rows and dev.tsv to {out}")


if __name__ == "__main__":
    main()
