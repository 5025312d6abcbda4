"""EDA augmentation of the train split (Wei & Zou 2019, https://arxiv.org/abs/1901.11196).

Small labelled sets gain from cheap, label-preserving noise: each augmented copy of a row
applies one of four word-level edits (swap, delete, insert, synonym). Only the train split is
augmented, so validation and test keep measuring real texts. Copies keep their source's
`label` and `row`, so a leakage check can still trace every copy to its source row.

Synonyms come from NLTK's WordNet when both `nltk` and its wordnet corpus are already on
disk; nothing is ever downloaded. Without them, `synonym` is skipped with a message and
`insert` inserts copies of words from the same sentence instead of synonyms.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import pandas as pd

from tunelab.config import AugmentConfig
from tunelab.errors import ConfigError

SynonymSource = Callable[[str], list[str]]
"""Maps a word (as it appears in the text) to replacement words; [] when it has none."""

OPERATIONS = ("swap", "delete", "insert", "synonym")

NO_WORDNET = (
    "no offline WordNet found (pip install nltk and place the wordnet corpus in an "
    "nltk_data directory)"
)
SYNONYM_SKIPPED = f"synonym replacement skipped: {NO_WORDNET}"
INSERT_FALLBACK = (
    f"insert: synonym insertion skipped, {NO_WORDNET}; inserted copies of words "
    "from the same sentence instead"
)

# Function words: WordNet has senses for some ("a" → vitamin A, "is" → "exist") that would
# change a sentence's grammar rather than paraphrase it.
_STOP_WORDS_TEXT = (
    "a an the and or but if then so of at by for with about to from in on into over under "
    "is am are was were be been being do does did have has had i me my we our you your he "
    "him his she her it its they them their this that these those not no nor very too can "
    "will just as than there here what which who whom when where why how all any each"
)
_STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())

_PUNCT = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)


def find_wordnet() -> SynonymSource | None:
    """WordNet synonyms when nltk and its corpus are on disk, else None (never downloads)."""
    try:
        import nltk
    except ImportError:
        return None
    found = False
    for resource in ("corpora/wordnet", "corpora/wordnet.zip"):
        try:
            nltk.data.find(resource)
        except LookupError:
            continue
        found = True
        break
    if not found:
        return None
    try:
        from nltk.corpus import wordnet

        wordnet.synsets("good")  # a corpus that is present but unreadable counts as absent
    except (LookupError, OSError, ValueError):
        return None
    return _wordnet_source(wordnet)


def _wordnet_source(wordnet: Any) -> SynonymSource:
    """Wrap an NLTK WordNet reader: punctuation and leading capital of the word are kept."""

    def synonyms(word: str) -> list[str]:
        match = _PUNCT.match(word)
        if match is None:
            return []
        head, core, tail = match.groups()
        key = core.lower()
        if not key or key in _STOP_WORDS or not any(ch.isalpha() for ch in key):
            return []
        names: dict[str, None] = {}
        for synset in wordnet.synsets(key):
            for lemma in synset.lemma_names():
                name = str(lemma).replace("_", " ")
                if name.lower() != key:
                    names[name] = None
        capital = core[:1].isupper()
        return [f"{head}{name[:1].upper() + name[1:] if capital else name}{tail}" for name in names]

    return synonyms


def augment_train(
    frame: pd.DataFrame,
    cfg: AugmentConfig,
    seed: int,
    synonyms: SynonymSource | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The train frame followed by `cfg.multiplier` EDA copies of each row, and the stats.

    Each copy applies one operation drawn at random from `cfg.operations`, changing about
    `alpha` of its words. `synonyms` replaces the synonym source (tests, other languages);
    when None, WordNet is used if it is installed offline. Without any source, `synonym`
    is skipped with a message in `stats["skipped"]` and `insert` inserts a copy of another
    word from the same sentence. A ConfigError is raised when no requested operation can run.

    A copy whose words equal its source's is kept (short texts leave EDA little to change)
    but counted as `unchanged`. Everything random comes from `random.Random(seed)`, so the
    same frame, config and seed give the same output.
    """
    if not cfg.enabled:
        return frame, {"enabled": False}

    requested = list(dict.fromkeys(cfg.operations))  # a repeat would only skew the draw
    source = synonyms
    if source is None and ("synonym" in requested or "insert" in requested):
        source = find_wordnet()
    skipped: list[str] = []
    operations = list(requested)
    if source is None:
        if "synonym" in operations:
            operations.remove("synonym")
            skipped.append(SYNONYM_SKIPPED)
        if "insert" in operations:
            skipped.append(INSERT_FALLBACK)
    if not operations:
        if requested:
            raise ConfigError(
                f"data.augment.operations: only 'synonym' was requested and {NO_WORDNET}; "
                "add swap, delete or insert, or set data.augment.enabled=false."
            )
        raise ConfigError(
            "data.augment.operations is empty; list at least one of swap, delete, insert, "
            "synonym or set data.augment.enabled=false."
        )

    rng = random.Random(seed)
    edit = _Editor(rng, cfg.alpha, _cached(source) if source is not None else None)
    by_operation = dict.fromkeys(operations, 0)
    unchanged = 0
    texts: list[str] = []
    for text in frame["text"].astype(str):
        words = text.split()
        for _ in range(cfg.multiplier):
            operation = rng.choice(operations)
            new_words = edit(operation, words)
            by_operation[operation] += 1
            if new_words == words:
                unchanged += 1
            texts.append(" ".join(new_words) if words else text)

    repeats = [i for i in range(len(frame)) for _ in range(cfg.multiplier)]
    copies = frame.iloc[repeats].reset_index(drop=True)  # a unique index for the assignment
    copies["text"] = pd.Series(texts, index=copies.index, dtype="str")
    copies["augmented"] = True
    originals = frame.copy()
    originals["augmented"] = False
    out = pd.concat([originals, copies], ignore_index=True)
    out["augmented"] = out["augmented"].astype(bool)
    stats: dict[str, Any] = {
        "enabled": True,
        "rows_in": len(frame),
        "rows_added": len(copies),
        "by_operation": by_operation,
        "unchanged": unchanged,
        "skipped": skipped,
    }
    return out, stats


def _cached(source: SynonymSource) -> SynonymSource:
    """Look each word up once per call: WordNet lookups dominate the run time."""
    seen: dict[str, list[str]] = {}

    def lookup(word: str) -> list[str]:
        if word not in seen:
            seen[word] = list(source(word))
        return seen[word]

    return lookup


class _Editor:
    """The four EDA operations on a word list; each returns a new list, the input is kept."""

    def __init__(self, rng: random.Random, alpha: float, synonyms: SynonymSource | None) -> None:
        self.rng = rng
        self.alpha = alpha
        self.synonyms = synonyms

    def __call__(self, operation: str, words: list[str]) -> list[str]:
        if not words:
            return []
        n = max(1, round(self.alpha * len(words)))
        if operation == "swap":
            return self.swap(words, n)
        if operation == "delete":
            return self.delete(words)
        if operation == "insert":
            return self.insert(words, n)
        if operation == "synonym":
            return self.replace(words, n)
        raise ValueError(f"unknown augmentation operation {operation!r}; known: {OPERATIONS}")

    def swap(self, words: list[str], n: int) -> list[str]:
        out = list(words)
        if len(out) < 2:
            return out
        for _ in range(n):
            i, j = self.rng.sample(range(len(out)), 2)
            out[i], out[j] = out[j], out[i]
        return out

    def delete(self, words: list[str]) -> list[str]:
        """Drop each word with probability alpha; an empty text would carry no signal."""
        kept = [word for word in words if self.rng.random() >= self.alpha]
        if not kept:
            kept = [self.rng.choice(words)]
        return kept

    def insert(self, words: list[str], n: int) -> list[str]:
        out = list(words)
        for _ in range(n):
            out.insert(self.rng.randint(0, len(out)), self._new_word(out))
        return out

    def _new_word(self, words: list[str]) -> str:
        """A synonym of a random word that has one; a copy of a random word when none has."""
        if self.synonyms is not None:
            lookup = self.synonyms
            candidates = [word for word in dict.fromkeys(words) if lookup(word)]
            if candidates:
                return self.rng.choice(lookup(self.rng.choice(candidates)))
        return self.rng.choice(words)

    def replace(self, words: list[str], n: int) -> list[str]:
        """Replace up to n distinct positions whose words have synonyms."""
        assert self.synonyms is not None  # synonym is dropped from the operations without one
        out = list(words)
        positions = list(range(len(out)))
        self.rng.shuffle(positions)
        replaced = 0
        for position in positions:
            if replaced == n:
                break
            options = self.synonyms(out[position])
            if options:
                out[position] = self.rng.choice(options)
                replaced += 1
        return out
