"""Rebuild the bundled recipe samples in data/{gsm8k,scitldr,sms_spam}/ from the shared copies.

python scripts/make_recipe_data.py [--shared ../shared/data]

Samples are the first N records of each file, byte-identical lines (no reordering, no edits), so
each one can be checked against the public original; each folder's PROVENANCE.md names the source.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# folder -> (file, records kept; None = the whole file)
SAMPLES = {
    "gsm8k": [("train.jsonl", 1000), ("test.jsonl", 250), ("LICENSE", None)],
    "scitldr": [("train.jsonl", 600), ("dev.jsonl", 120), ("test.jsonl", 120), ("LICENSE", None)],
    "sms_spam": [
        ("SMSSpamCollection.tsv", None),
        ("sms_spam.jsonl", None),
        ("readme_original_utf8.txt", None),
    ],
}


def first_records(source: Path, target: Path, count: int) -> None:
    lines = source.read_bytes().splitlines(keepends=True)[:count]
    if lines and not lines[-1].endswith(b"\n"):
        lines[-1] += b"\n"
    target.write_bytes(b"".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    for folder, files in SAMPLES.items():
        out = ROOT / "data" / folder
        out.mkdir(parents=True, exist_ok=True)
        for name, count in files:
            source, target = args.shared / folder / name, out / name
            if count is None:
                shutil.copyfile(source, target)
            else:
                first_records(source, target, count)
            data = target.read_bytes()
            lines = data.count(b"\n")
            print(
                f"{folder}/{name}: {len(data):,} bytes, {lines:,} lines, "
                f"sha256 {hashlib.sha256(data).hexdigest()}"
            )


if __name__ == "__main__":
    main()
