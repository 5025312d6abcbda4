"""Near-duplicate detection with MinHash LSH (datasketch), confirmed by exact Jaccard."""

from __future__ import annotations

from typing import Any

from datasketch import MinHash, MinHashLSH

NUM_PERM = 128
TARGET_RECALL = 0.995  # chance that a pair at exactly the threshold becomes a candidate


def lsh_bands(threshold: float, num_perm: int = NUM_PERM) -> tuple[int, int]:
    """(bands, rows) that make a pair at `threshold` a candidate with ≥ 99.5% probability.

    datasketch's own choice balances misses against false candidates; here misses matter and
    false candidates cost only an exact Jaccard check, so recall wins. Among the choices that
    reach it, the most rows per band keeps the candidate lists short.
    """
    for rows in range(num_perm // 2, 0, -1):  # datasketch needs at least two bands
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= TARGET_RECALL:
            return bands, rows
    return num_perm, 1


def shingles(text: str) -> set[str]:
    """Word 3-grams of the lowercased text; texts under 3 words are one shingle (exact match only)."""
    words = text.lower().split()
    if len(words) < 3:
        return {" ".join(words)}
    return {" ".join(words[i : i + 3]) for i in range(len(words) - 2)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class NearIndex:
    """An LSH index of `corpus` that answers for queries given later, a chunk at a time (the
    leakage check streams a train split bigger than memory against the eval splits this way)."""

    def __init__(self, corpus: list[str], threshold: float) -> None:
        self.threshold = threshold
        self.sets = [shingles(t) for t in corpus]
        self.hashes = MinHash.bulk(
            [[s.encode() for s in ss] for ss in self.sets], num_perm=NUM_PERM
        )
        self.lsh = MinHashLSH(num_perm=NUM_PERM, params=lsh_bands(threshold))
        with self.lsh.insertion_session() as session:
            for j, minhash in enumerate(self.hashes):
                session.insert(j, minhash, check_duplication=False)

    def query(self, texts: list[str]) -> list[tuple[int, int]]:
        """Pairs (text index, corpus index) with word-3-gram Jaccard similarity ≥ threshold."""
        sets = [shingles(t) for t in texts]
        hashes = MinHash.bulk([[s.encode() for s in ss] for ss in sets], num_perm=NUM_PERM)
        return self._confirmed(sets, hashes)

    def _confirmed(
        self, sets: list[set[str]], hashes: list[Any], same_set: bool = False
    ) -> list[tuple[int, int]]:
        pairs = []
        for i, minhash in enumerate(hashes):
            for j in self.lsh.query(minhash):
                if same_set and j <= i:
                    continue
                if jaccard(sets[i], self.sets[j]) >= self.threshold:
                    pairs.append((i, int(j)))
        return pairs


def near_duplicate_pairs(
    queries: list[str], corpus: list[str], threshold: float, same_set: bool = False
) -> list[tuple[int, int]]:
    """Pairs (query index, corpus index) whose word-3-gram Jaccard similarity is ≥ threshold.

    With `same_set`, queries and corpus are one list and each unordered pair is reported once.
    """
    if not queries or not corpus:
        return []
    index = NearIndex(corpus, threshold)
    if same_set:
        return index._confirmed(index.sets, index.hashes, same_set=True)
    return index.query(queries)
