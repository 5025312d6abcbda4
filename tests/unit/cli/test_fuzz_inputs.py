"""Fuzz the inputs: generated files and configs through the real CLI, in process (issue 15, Inputs).

A seeded generator writes data files (valid tables, other encodings, truncations, random bytes,
odd headers, huge fields, list/struct columns, NaN/float/mixed labels, empty files, archives)
and configs (random YAML with known, aliased, misspelt and random keys, bad values, alias bombs,
broken syntax, random overrides), and runs `data inspect`, `config validate` and
`predict --input` on a tiny run. Every outcome must be a success or exit code 2 with exactly one
line under 300 characters on stderr (`config validate`'s list of problems: one line each), never
a traceback and never a partial output file. A case the generator knows must fail (UTF-16, an
archive, float labels, …) and succeeds anyway, or a success whose result is checked and wrong
(rows lost, labels changed, a warning missing), is a silent wrong result.

    TUNELAB_FUZZ_CASES=2000 .venv/bin/python -m pytest tests/unit/test_fuzz_inputs.py -q -s

runs the big corpus (default 60 cases, ~1 minute) and prints the tally; TUNELAB_FUZZ_SEED
changes the corpus, TUNELAB_FUZZ_REPORT=path.json writes the tally and every non-clean case.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import os
import random
import string
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from inputs_cli import Outcome, invoke, train_tiny_run

CASES = int(os.environ.get("TUNELAB_FUZZ_CASES", "60"))
SEED = int(os.environ.get("TUNELAB_FUZZ_SEED", "15"))

WORDS = ["good", "great", "love", "fun", "bad", "awful", "dull", "boring", "the", "film", "plot"]
ODD_TEXT = [
    "café",
    "naïve",
    "日本語",
    "emoji 🎬",
    'a "quote"',
    "comma, inside",
    "tab\tin",
    "x\r\ny",
]


@dataclass
class Case:
    command: str  # inspect, config or predict
    kind: str  # the generator that made it
    files: dict[str, bytes] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)  # {dir} and {run} are filled in
    expect: str = "any"  # ok (valid, checked), error (must be refused) or any
    check: Callable[[Path, Outcome], str | None] | None = None
    output: str | None = None  # an output path that must not exist unless the call succeeded
    folder: str = ""  # a long directory name for some cases: messages must stay short anyway


# --- data files --------------------------------------------------------------------------------


def rows(rng: random.Random, n: int, odd: bool = False) -> list[dict[str, Any]]:
    """Unique, non-empty texts with balanced pos/neg labels (valid for train and predict)."""
    records = []
    for i in range(n):
        words = rng.sample(WORDS, rng.randint(1, 5))
        if odd and rng.random() < 0.3:
            words.append(rng.choice(ODD_TEXT))
        records.append({"text": " ".join(words) + f" n{i}", "label": ("pos", "neg")[i % 2]})
    return records


def table_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    if fmt == "csv":
        return frame.to_csv(index=False).encode()
    if fmt == "tsv":
        return frame.to_csv(index=False, sep="\t").encode()
    if fmt == "jsonl":
        return frame.to_json(orient="records", lines=True, force_ascii=False).encode()
    if fmt == "json":
        return frame.to_json(orient="records", force_ascii=False).encode()
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def fake_xlsx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    return buffer.getvalue()


def data_file(rng: random.Random) -> tuple[str, bytes, str, list[dict[str, Any]] | None, str]:
    """(file name, bytes, expectation, the valid records or None, generator name)."""
    fmt = rng.choice(["csv", "tsv", "jsonl", "json", "parquet"])
    n = rng.randint(20, 60)
    records = rows(rng, n, odd=rng.random() < 0.5)
    frame = pd.DataFrame(records)
    valid = table_bytes(frame, fmt)
    kind = rng.choice(
        [
            "valid",
            "valid",
            "valid",
            "encoding",
            "truncated",
            "random_bytes",
            "bitflip",
            "odd_header",
            "huge_field",
            "nested_column",
            "nan_labels",
            "float_labels",
            "whole_float_labels",
            "mixed_labels",
            "numeric_texts",
            "empty",
            "header_only",
            "archive",
            "json_shapes",
            "many_columns",
            "bad_extension",
            "line_endings",
            "bool_labels",
        ]
    )
    name = f"data.{fmt}"
    if kind == "valid":
        return name, valid, "ok", records, kind
    if kind == "encoding":
        encoding = rng.choice(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "cp1252"])
        text = "text,label\n" + "".join(
            f"{r['text']} {rng.choice(['café', 'naïve', '“quoted”', 'über'])},{r['label']}\n"
            for r in records
        )
        try:
            encoded = text.encode(encoding, errors="replace")
        except LookupError:
            encoded = text.encode()
        if encoding in ("utf-32",):
            encoded = codecs.BOM_UTF32_LE + text.encode("utf-32-le")
        return "data.csv", encoded, "error", None, f"encoding_{encoding}"
    if kind == "truncated":
        cut = rng.randint(0, max(len(valid) - 1, 0))
        return name, valid[:cut], "any", None, kind
    if kind == "random_bytes":
        size = rng.choice([1, 7, 100, 5000])
        return name, bytes(rng.getrandbits(8) for _ in range(size)), "any", None, kind
    if kind == "bitflip":
        data = bytearray(valid)
        for _ in range(rng.randint(1, 10)):
            data[rng.randrange(len(data))] = rng.getrandbits(8)
        return name, bytes(data), "any", None, kind
    if kind == "odd_header":
        header = rng.choice(
            [
                "comment_body,stars",
                ",",
                "text,text",
                "Text , LABEL",
                '"text","label"',
                "text;label",
                "\ttext,label",
                "txt,lbl,extra",
            ]
        )
        body = "".join(f"{r['text']},{r['label']}\n" for r in records)
        return "data.csv", f"{header}\n{body}".encode(), "any", None, kind
    if kind == "huge_field":
        big = frame.copy()
        big.loc[rng.randrange(n), "text"] = "word " * rng.choice([20_000, 200_000])
        return name, table_bytes(big, fmt), "any", None, kind
    if kind == "nested_column":
        nested = frame.copy()
        nested["text"] = [
            rng.choice([["a", "b"], {"field": "x"}, [1, 2, 3]]) if i % 3 == 0 else t
            for i, t in enumerate(nested["text"])
        ]
        target = rng.choice(["jsonl", "json", "parquet"])
        try:
            content = table_bytes(nested, target)
        except Exception:  # pyarrow cannot store this mix: store lists only
            nested["text"] = [["a", "b"]] * n
            content = table_bytes(nested, target)
        return f"data.{target}", content, "error", None, kind
    if kind == "nan_labels":
        labelled = frame.copy()
        spots = rng.sample(range(n), rng.randint(1, 5))
        labelled.loc[spots, "label"] = rng.choice([None, "nan", "NaN", "", "null"])
        return name, table_bytes(labelled, fmt), "any", None, kind
    if kind == "float_labels":
        scored = frame.copy()
        scored["label"] = [rng.choice([0.5, 0.25, 1.5, 0.0, 1.0]) for _ in range(n)]
        scored.loc[0, "label"] = 0.5
        return name, table_bytes(scored, fmt), "error", None, kind
    if kind == "whole_float_labels":
        whole = frame.copy()
        whole["label"] = [("1.0", "0", "1", "0.0")[i % 4] for i in range(n)]
        return name, table_bytes(whole, fmt), "ok", None, kind
    if kind == "mixed_labels":
        mixed = pd.DataFrame(rows(rng, 48))  # four classes: enough rows to split each
        mixed["label"] = [("1", "pos", "0", "neg")[i % 4] for i in range(48)]
        return name, table_bytes(mixed, fmt), "ok", None, kind
    if kind == "numeric_texts":
        numbers = frame.copy()
        numbers["text"] = [str(1000 + i) for i in range(n)]
        return name, table_bytes(numbers, fmt), "ok", None, kind
    if kind == "empty":
        return name, rng.choice([b"", b"\n", b"   \n\n"]), "error", None, kind
    if kind == "header_only":
        return "data.csv", rng.choice([b"text,label\n", b"text,label"]), "error", None, kind
    if kind == "archive":
        content = rng.choice([fake_xlsx(), gzip.compress(valid), b"PAR1" + valid[:50]])
        return "data.csv", content, "error", None, kind
    if kind == "json_shapes":
        shape = rng.choice(
            [
                "[1, 2, 3]",
                '"just a string"',
                '{"a": 1}',
                '{"rows": [{"text": "x", "label": "a"}], "more": []}',
                "[" * 3000 + "]" * 3000,
                '[{"text": {"deep": ' * 50 + "1" + "}}]" * 50,
                "null",
            ]
        )
        return rng.choice(["data.json", "data.jsonl"]), shape.encode(), "any", None, kind
    if kind == "many_columns":
        wide = frame.copy()
        for i in range(rng.choice([50, 300])):
            wide[f"extra_column_{i}"] = "x"
        return name, table_bytes(wide, fmt), "any", None, kind
    if kind == "line_endings":
        ending = rng.choice([b"\r\n", b"\r", b"\n\n"])
        text = "text,label\n" + "".join(
            f"{r['text'].split()[0]} n{i},{r['label']}\n" for i, r in enumerate(records)
        )
        return "data.csv", text.encode().replace(b"\n", ending), "any", None, kind
    if kind == "bool_labels":
        flags = frame.copy()
        flags["label"] = [i % 2 == 0 for i in range(n)]
        return name, table_bytes(flags, fmt), "any", None, kind
    return "data.xyz", valid, "error", None, kind  # bad_extension


def inspect_case(rng: random.Random, model_dir: Path) -> Case:
    name, content, expect, records, kind = data_file(rng)
    args = ["data", "inspect", "{dir}/" + name, f"model.name={model_dir}", "data.max_length=16"]
    if rng.random() < 0.25:
        override = rng.choice(
            [
                "data.text_column=body",
                "data.label_column=text",
                "data.header=false",
                "data.format=tsv",
                "data.quoting=none",
                "data.clean.empty_text=drop",
                "data.split.test=0.5",
                "data.max_train_rows=3",
            ]
        )
        args.append(override)
        expect = "any" if expect == "ok" else expect
    out = rng.choice(["{dir}/report", "{dir}/nested/new/report", "{dir}/" + name + "/report"])
    args += ["--out", out]
    if out.startswith("{dir}/" + name):  # a directory inside the data file cannot be made
        expect = "error"
    case = Case("inspect", kind, {name: content}, args, expect, output=out)
    if expect == "ok":
        case.check = inspect_check(kind, records)
    return case


def inspect_check(kind: str, records: list[dict[str, Any]] | None) -> Callable[..., str | None]:
    def check(directory: Path, outcome: Outcome) -> str | None:
        out = next(p for p in (directory / "report", directory / "nested/new/report") if p.exists())
        report = json.loads((out / "data_report.json").read_text())
        if not (out / "data_report.html").is_file():
            return "data_report.html missing"
        labels, warnings = report["labels"], " ".join(report["warnings"])
        if kind == "valid" and sorted(labels) != ["neg", "pos"]:
            return f"labels {labels}, wrote pos/neg"
        if kind == "valid" and records is not None:
            kept = sum(split["rows"] for split in report["splits"].values())
            if kept != len(records):
                return f"{kept} rows in the splits, wrote {len(records)} distinct rows"
        if kind == "whole_float_labels" and labels != ["0", "1"]:
            return f"labels {labels}, wrote 1.0/1 and 0.0/0"
        if kind == "mixed_labels" and "mixes numbers" not in warnings:
            return "no warning for labels mixing numbers and names"
        if kind == "numeric_texts" and "is a number" not in warnings:
            return "no warning for an all-number text column"
        return None

    return check


# --- configs -----------------------------------------------------------------------------------

SECTIONS = ["data", "model", "task", "method", "train", "eval", "output", "search", "trian"]
KEYS = [
    "lr",
    "learning_rate",
    "epochs",
    "num_train_epochs",
    "batch_size",
    "per_device_train_batch_size",
    "max_length",
    "max_seq_length",
    "text_column",
    "txt_column",
    "name",
    "type",
    "precision",
    "warmup_ratio",
    "seed",
    "split",
    "clean",
    "train_file",
    "format",
    "header",
    "overwrite",
    "dir",
    "space",
    "zzz",
]


def value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(12 if depth < 3 else 8)
    if choice == 0:
        return rng.randint(-(10**6), 10**6)
    if choice == 1:
        return rng.choice([0.0, -1.5, 3e-5, 1e308, float("inf"), float("nan")])
    if choice == 2:
        return rng.choice([True, False, None])
    if choice == 3:
        return "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 30)))
    if choice == 4:
        return "x" * rng.choice([100, 5000])
    if choice == 5:
        return rng.choice(["auto", "csv", "lora", "fp17", "classification", "../victim", "."])
    if choice == 6:
        return rng.choice(["日本語", "\u202e", "\ud7ff", "tab\there"])
    if choice == 7:
        return rng.choice(["2024-01-01", "0x1F", "1_000", "~", "'quoted'"])
    if choice in (8, 9):
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(KEYS): value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def bomb(rng: random.Random) -> str:
    width, depth = rng.randint(5, 12), rng.randint(5, 9)
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, depth):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    lines.append(f"train: {{lr: *a{depth - 1}}}")
    return "\n".join(lines) + "\n"


def config_case(rng: random.Random, model_dir: Path, data: Path) -> Case:
    kind = rng.choice(["random", "random", "near_valid", "syntax", "bomb", "alias", "bytes"])
    raw: dict[str, Any] = {}
    if kind in ("random", "near_valid", "syntax", "alias"):
        for _ in range(rng.randint(0, 5)):
            section = raw.setdefault(rng.choice(SECTIONS), {})
            if isinstance(section, dict):
                section[rng.choice(KEYS)] = value(rng)
    if kind == "near_valid":
        raw = {
            "data": {"train_file": str(data), "max_length": 16},
            "model": {"name": str(model_dir)},
            rng.choice(["train", "data", "eval"]): {rng.choice(KEYS): value(rng)},
        }
    text = yaml.safe_dump(raw, allow_unicode=True)
    expect = "any"
    if kind == "syntax":
        chars = list(text or "a: b\n")
        for _ in range(rng.randint(1, 5)):
            chars.insert(
                rng.randrange(len(chars) + 1),
                rng.choice([":", "[", "{", "\t", "&", "*", "'", "- "]),
            )
        text = "".join(chars)
    elif kind == "bomb":
        text, expect = bomb(rng), "error"
    elif kind == "alias":
        text += "anchors: &x {lr: 1}\ntrain: {<<: *x}\nrec: &r [*r]\n"
        expect = "error"
    content = text.encode()
    if kind == "bytes":
        content = rng.choice(
            [
                bytes(rng.getrandbits(8) for _ in range(200)),
                "train: {lr: 0.1}\n".encode("utf-16"),
                b"train:\n  lr: caf\xe9\n",
                b"",
                b"- a list\n- at the top\n",
            ]
        )
    overrides = []
    for _ in range(rng.randint(0, 3)):
        overrides.append(
            rng.choice(
                [
                    f"{rng.choice(SECTIONS)}.{rng.choice(KEYS)}={value(rng)!s}",
                    "train.lr",
                    "=1",
                    "train.lr.x=1",
                    "data.train_file=" + rng.choice(["{dir}", "missing.csv", "x" * 3000]),
                    "train.lr=[1, 2",
                    "train.lr={a: &a [1,1,1,1], b: [*a,*a,*a]}",
                ]
            )
        )
    return Case(
        "config",
        kind,
        {"run.yaml": content},
        ["config", "validate", "{dir}/run.yaml", *overrides],
        expect,
    )


# --- predict -----------------------------------------------------------------------------------


def predict_texts_case(rng: random.Random) -> Case:
    texts = [
        rng.choice(
            [
                "superb fun film",
                "",
                "   ",
                "\t\n",
                "x" * rng.choice([10, 100_000]),
                "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 40))),
                rng.choice(ODD_TEXT),
                "\u200b",
            ]
        )
        for _ in range(rng.randint(1, 4))
    ]
    blank = any(not t.strip() for t in texts)
    args = ["predict", "{run}"]
    for text in texts:
        args += ["--text", text]
    case = Case("predict", "texts", {}, args, "error" if blank else "ok")
    if not blank:
        case.check = lambda directory, outcome: (
            None
            if len([line for line in outcome.stdout.splitlines() if line.startswith("{")])
            == len(texts)
            else "not one prediction per --text"
        )
    return case


def predict_case(rng: random.Random) -> Case:
    if rng.random() < 0.1:
        return predict_texts_case(rng)
    name, content, expect, records, kind = data_file(rng)
    if kind in ("float_labels", "whole_float_labels", "mixed_labels"):
        expect = "any" if kind == "float_labels" else expect  # predict ignores a label column
    if kind == "numeric_texts":
        expect = "ok"  # numbers are texts the model can score
    args = ["predict", "{run}", "--input", "{dir}/" + name]
    output = rng.choice(
        [None, "{dir}/out.jsonl", "{dir}/out.csv", "{dir}/sub/out.jsonl", "{dir}/" + name]
    )
    if output is not None:
        args += ["--output", output]
        if output.endswith(name):  # the input itself: must be refused
            expect = "error" if kind != "bad_extension" else expect
    extra = rng.random()
    if extra < 0.15:
        rows_at_a_time = rng.choice([0, 1, 7, 10_000])
        args += ["--chunk-rows", str(rows_at_a_time)]
        expect = "error" if rows_at_a_time == 0 else expect
    elif extra < 0.25:
        batch = rng.choice([0, 1, 3])
        args += ["--batch-size", str(batch)]
        expect = "error" if batch == 0 else expect
    elif extra < 0.35:
        args += ["--text-column", rng.choice(["text", "label", "col0", "body"])]
        # another column may hold fine texts (a nested 'text' is no longer read as the text)
        expect = "any" if expect == "ok" or kind == "nested_column" else expect
    case = Case("predict", kind, {name: content}, args, expect, output=output)
    if expect == "ok" and records is not None:
        case.check = predict_check(records, output)
    elif expect == "ok":
        case.check = predict_check(None, output)
    return case


def predict_check(
    records: list[dict[str, Any]] | None, output: str | None
) -> Callable[..., str | None]:
    def check(directory: Path, outcome: Outcome) -> str | None:
        if output is None:
            lines = [
                json.loads(line) for line in outcome.stdout.splitlines() if line.startswith("{")
            ]
        elif output.endswith(".jsonl"):
            path = Path(output.replace("{dir}", str(directory)))
            lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        else:
            path = Path(output.replace("{dir}", str(directory)))
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            lines = frame.to_dict(orient="records")
        if any(r.get("label") not in ("pos", "neg") for r in lines):
            return "a predicted label outside the run's labels"
        if records is not None:
            if len(lines) != len(records):
                return f"{len(lines)} predictions for {len(records)} rows"
            if [r["text"] for r in lines] != [r["text"] for r in records]:
                return "the texts came back changed or out of order"
            if [r.get("input_label") for r in lines] != [r["label"] for r in records]:
                return "the input's own label column was lost"
        return None

    return check


# --- the run -----------------------------------------------------------------------------------


def corpus(n: int, seed: int, model_dir: Path, data: Path) -> list[Case]:
    rng = random.Random(seed)
    makers = [
        lambda: inspect_case(rng, model_dir),
        lambda: config_case(rng, model_dir, data),
        lambda: predict_case(rng),
    ]
    cases = []
    for i in range(n):
        case = makers[i % 3]()
        if rng.random() < 0.15:
            case.folder = "long-directory-name-" * rng.choice([3, 6])
        cases.append(case)
    return cases


def run_case(case: Case, directory: Path, run_dir: Path) -> tuple[str, str]:
    """(verdict, detail): ok / error (clean) / traceback / bad_output / partial / silent / refused."""
    directory.mkdir(parents=True)
    for name, content in case.files.items():
        (directory / name).write_bytes(content)
    before = {name: content for name, content in case.files.items()}
    args = [a.replace("{dir}", str(directory)).replace("{run}", str(run_dir)) for a in case.args]
    outcome = invoke(*args)
    if outcome.kind == "bad":
        verdict = "traceback" if "traceback" in outcome.detail else "bad_output"
        return verdict, f"{outcome.detail} | {outcome.stderr[-400:]}"
    leftovers = [
        p.name
        for p in directory.rglob("*")
        if p.name.endswith(".partial") or ".tunelab-write-check" in p.name
    ]
    if leftovers:
        return "partial", f"left behind: {leftovers}"
    for name, content in before.items():
        if (directory / name).is_file() and (directory / name).read_bytes() != content:
            return "silent", f"the input {name} was changed"
    if outcome.kind == "error":
        if case.output is not None:
            out = Path(case.output.replace("{dir}", str(directory)))
            if (out.is_dir() and any(out.iterdir())) or (out.is_file() and out.name not in before):
                return "partial", f"{out} exists after an error"
        if case.expect == "ok":
            return "refused", outcome.line
        return "error", outcome.line
    if case.expect == "error":
        return "silent", "succeeded where it must be refused"
    if case.check is not None:
        problem = case.check(directory, outcome)
        if problem:
            return "silent", problem
    return "ok", ""


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("fuzz-run"), tiny_bert_dir)


def test_fuzzed_inputs_are_a_success_or_one_clean_line(
    fuzz_run: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    data = fuzz_run.parent.parent / "toy.csv"
    cases = corpus(CASES, SEED, tiny_bert_dir, data)
    tally: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    failures: list[dict[str, str]] = []
    for i, case in enumerate(cases):
        verdict, detail = run_case(case, tmp_path / f"case-{i}" / case.folder, fuzz_run)
        tally[verdict] += 1
        by_kind[f"{case.command}:{case.kind}"] += 1
        if verdict not in ("ok", "error"):
            failures.append(
                {
                    "case": str(i),
                    "command": case.command,
                    "kind": case.kind,
                    "verdict": verdict,
                    "detail": detail,
                    "args": " ".join(case.args),
                }
            )
    summary = {
        "cases": len(cases),
        "seed": SEED,
        "successes": tally["ok"],
        "one_line_errors": tally["error"],
        "tracebacks": tally["traceback"],
        "bad_output": tally["bad_output"],
        "partial_outputs": tally["partial"],
        "silent_wrong_results": tally["silent"],
        "valid_inputs_refused": tally["refused"],
        "by_command": dict(Counter(c.command for c in cases)),
    }
    print("\nfuzz tally:", json.dumps(summary))
    report = os.environ.get("TUNELAB_FUZZ_REPORT")
    if report:
        Path(report).write_text(
            json.dumps({**summary, "by_kind": dict(by_kind), "failures": failures}, indent=1)
        )
    assert failures == [], json.dumps(failures[:5], indent=1)
    assert tally["ok"] > 0 and tally["error"] > 0  # the corpus reached both outcomes
    assert {c.command for c in cases} == {"inspect", "config", "predict"}
