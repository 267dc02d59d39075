"""Regular two-level fractional factorial designs 2^(k−p): generators, defining relation,
resolution and alias structure.

The first q = k − p factors (the base) run through all 2^q on/off combinations; each of the
other p factors is switched on exactly where the product of its generator's base factors is
+1 (on = +1, off = −1). Each generator gives a word of the defining relation (the generated
factor times its generator: E = ABCD gives I = ABCDE); every product of words is a word too.
The resolution is the length of the shortest word: in a resolution-V design no main effect or
two-factor interaction is aliased with another main effect or two-factor interaction, so all
of them are estimable, assuming interactions of three or more factors are negligible.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

# Factor letters as textbooks write them (no I: it names the identity of the defining relation).
LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"
RESOLUTIONS = (3, 4, 5)
# The most factors a resolution-V design has in 2^q runs (16 → 5, 32 → 6, 64 → 8, 128 → 11,
# 256 → 17); more would need a larger fraction than this module searches.
_MAX_FACTORS_V = {4: 5, 5: 6, 6: 8, 7: 11, 8: 17}
MAX_FACTORS = 17  # also bounds the defining relation (2^p − 1 words) for resolutions III, IV
_UPGRADE_BUDGET = 20_000  # extensions tried when looking for a higher resolution than asked


def _bits(mask: int) -> list[int]:
    return [i for i in range(mask.bit_length()) if mask >> i & 1]


def word_label(mask: int, letters: str = LETTERS) -> str:
    """A word (bit i = factor i) in letters: 0b10011 → "ABE"; the empty word is "I"."""
    return "".join(letters[i] for i in _bits(mask)) or "I"


@dataclass(frozen=True)
class Fraction:
    """A 2^(k−p) fraction: ``generators[j]`` is the bit mask of the base factors whose product
    sets factor q + j (q = k − p)."""

    k: int
    generators: tuple[int, ...]

    def __post_init__(self) -> None:
        q = self.k - len(self.generators)
        if q < 1:
            raise ValueError(f"{len(self.generators)} generators leave no base factor of {self.k}")
        for g in self.generators:
            if g <= 0 or g >> q:
                raise ValueError(f"generator {g:#b} is not a product of the {q} base factors")

    @property
    def p(self) -> int:
        return len(self.generators)

    @property
    def q(self) -> int:
        return self.k - self.p

    @property
    def n_runs(self) -> int:
        return 1 << self.q

    def generator_words(self) -> list[int]:
        """One word per generator: the generated factor times its generator."""
        return [g | 1 << (self.q + j) for j, g in enumerate(self.generators)]

    def defining_words(self) -> list[int]:
        """Every word of the defining relation (all products of the generator words), shortest
        first; empty for a full factorial."""
        words = [0]
        for w in self.generator_words():
            words += [w ^ v for v in words]
        return sorted(words[1:], key=lambda w: (w.bit_count(), _bits(w)))

    @property
    def resolution(self) -> int | None:
        """The length of the shortest word; None for a full factorial (nothing aliased)."""
        words = self.defining_words()
        return words[0].bit_count() if words else None

    def aliases(self, effect: int) -> list[int]:
        """The effects aliased with ``effect`` (a bit mask of factors), shortest first."""
        return aliases_of(effect, self.defining_words())

    def on_masks(self) -> list[int]:
        """The runs as bit masks of the factors switched on; the base combinations in
        descending order, so the all-on run comes first."""
        q = self.q
        runs = []
        for m in range(self.n_runs - 1, -1, -1):
            # base factor i is on when bit (q-1-i) of m is set (all-on first, as in a factorial)
            on = sum(1 << i for i in range(q) if m >> (q - 1 - i) & 1)
            for j, g in enumerate(self.generators):
                if (g & ~on).bit_count() % 2 == 0:  # an even number of −1s: the product is +1
                    on |= 1 << (q + j)
            runs.append(on)
        return runs


def aliases_of(effect: int, words: Sequence[int]) -> list[int]:
    """The effects aliased with ``effect`` under the defining relation ``words`` (bit masks),
    shortest first: effect × word for every word."""
    return sorted((effect ^ w for w in words), key=lambda a: (a.bit_count(), _bits(a)))


def shortest(chain: Sequence[int]) -> list[int]:
    """The shortest words of an alias chain sorted shortest first."""
    return [a for a in chain if a.bit_count() == chain[0].bit_count()] if chain else []


def _words_ok(words: list[int], new: int, resolution: int) -> list[int] | None:
    """The relation's words with the generator word ``new`` added, or None if a word would be
    shorter than ``resolution``."""
    added = [new ^ w for w in words]
    if any(w.bit_count() < resolution for w in added):
        return None
    return words + added


class _OutOfBudget(Exception):
    pass


def _search(k: int, q: int, resolution: int,
            budget: int | None = None) -> tuple[int, ...] | None:
    """Generators (products of at least ``resolution − 1`` of the q base factors) for k
    factors in 2^q runs with every word at least ``resolution`` long, or None; depth-first,
    candidates in order of length then letters, so the first design found is deterministic.
    With a ``budget`` the search gives up (None) after that many tried extensions."""
    candidates = [sum(1 << i for i in c) for size in range(resolution - 1, q + 1)
                  for c in combinations(range(q), size)]
    p = k - q
    tried = 0

    def extend(chosen: list[int], words: list[int], start: int) -> Iterator[tuple[int, ...]]:
        nonlocal tried
        if len(chosen) == p:
            yield tuple(chosen)
            return
        bit = 1 << (q + len(chosen))
        for i in range(start, len(candidates) - (p - len(chosen) - 1)):
            tried += 1
            if budget is not None and tried > budget:
                raise _OutOfBudget
            grown = _words_ok(words, candidates[i] | bit, resolution)
            if grown is not None:
                yield from extend([*chosen, candidates[i]], grown, i + 1)

    try:
        return next(extend([], [0], 0), None)
    except _OutOfBudget:
        return None


def _fewest_base_factors(k: int, resolution: int) -> int:
    if resolution == 3:  # 2^q − 1 ≥ k: a saturated design
        q = (k + 1 - 1).bit_length()
    elif resolution == 4:  # 2^(q−1) ≥ k: a fold-over
        q = (k - 1).bit_length() + 1
    else:
        q = min(q for q, most in _MAX_FACTORS_V.items() if most >= k)
    return min(q, k)


def fraction_for(k: int, resolution: int = 5) -> Fraction:
    """The smallest regular fraction of k factors with at least ``resolution`` (3, 4 or 5)."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution!r}")
    if not 1 <= k <= MAX_FACTORS:
        raise ValueError(f"a fraction here has 1 to {MAX_FACTORS} factors, got {k}")
    q = _fewest_base_factors(k, resolution)
    while q < k:
        # The highest resolution these 2^q runs allow (a word is at most q + 1 long): a
        # 2^(6−1) fraction can be of resolution VI (F = ABCDE), better than the V asked for.
        # Looking beyond the resolution asked for is bounded (a failing search is exhaustive).
        for target in range(q + 1, resolution - 1, -1):
            found = _search(k, q, target, None if target == resolution else _UPGRADE_BUDGET)
            if found is not None:
                return Fraction(k, found)
        q += 1
    return Fraction(k, ())


def fraction_from_words(k: int, generators: Sequence[str]) -> Fraction:
    """A fraction written as in a textbook: ``["ABCD", "ABEF"]`` for G = ABCD, H = ABEF (the
    generated factors are the last ones, in order)."""
    masks = []
    for text in generators:
        try:
            masks.append(sum(1 << LETTERS.index(ch) for ch in text.upper()))
        except ValueError:
            raise ValueError(f"generator {text!r}: letters must come from {LETTERS}") from None
    return Fraction(k, tuple(masks))


def defining_relation(on_masks: Sequence[int], k: int) -> list[tuple[int, int]]:
    """(word, sign) of every word whose factors' product is the same (sign ±1) in every run:
    the defining relation of a regular fraction read back from its runs (bit masks of the
    factors switched on). Found with a Walsh–Hadamard transform of the run counts."""
    if not on_masks:
        return []
    counts = np.zeros(1 << k)
    for m in on_masks:
        counts[m] += 1.0
    h = 1
    while h < counts.size:  # in-place fast Walsh–Hadamard transform
        view = counts.reshape(-1, 2, h)
        view[:, 0], view[:, 1] = view[:, 0] + view[:, 1], view[:, 0] - view[:, 1]
        h *= 2
    n = len(on_masks)
    out = []
    for w in np.flatnonzero(np.isclose(np.abs(counts), n))[1:]:
        w = int(w)
        # counts[w] = Σ (−1)^|w ∧ on|; the product of the ±1 levels is (−1)^|w| times that.
        sign = int(np.sign(counts[w])) * (-1) ** w.bit_count()
        out.append((w, sign))
    return sorted(out, key=lambda ws: (ws[0].bit_count(), _bits(ws[0])))


def _effect_label(mask: int, names: Sequence[str]) -> str:
    return ":".join(names[i] for i in _bits(mask))


def describe(fraction: Fraction, names: Sequence[str]) -> dict:
    """The fraction for people: its size, resolution, letters (factor names), generators,
    defining relation and, for every main effect and two-factor interaction, the effects it
    is aliased with (the shortest ones, and how many longer ones there are)."""
    if len(names) != fraction.k:
        raise ValueError(f"{len(names)} names for {fraction.k} factors")
    q = fraction.q
    effects = [1 << i for i in range(fraction.k)]
    effects += [(1 << i) | (1 << j) for i, j in combinations(range(fraction.k), 2)]
    aliases = []
    for e in effects:
        chain = fraction.aliases(e)
        first = shortest(chain)
        aliases.append({"effect": word_label(e), "term": _effect_label(e, names),
                        "aliased_with": [word_label(a) for a in first],
                        "longer": len(chain) - len(first)})
    return {"factors": fraction.k, "p": fraction.p, "runs": fraction.n_runs,
            "resolution": fraction.resolution,
            "letters": {LETTERS[i]: name for i, name in enumerate(names)},
            "generators": [f"{LETTERS[q + j]} = {word_label(g)}"
                           for j, g in enumerate(fraction.generators)],
            "defining_relation": [word_label(w) for w in fraction.defining_words()],
            "aliases": aliases}
