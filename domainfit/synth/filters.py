"""Checks a generated question must pass before it becomes a pair.

Each check is a small pure function that returns ``None`` when the question passes
and a short reason code when it does not (the code lands in ``rejected.jsonl``).
:func:`check_pair` runs the stateless checks in a fixed order; duplicates are
checked by a :class:`DuplicateFilter` that remembers the run's questions, and the
optional round-trip check by a :class:`RoundTripChecker` over the run's chunks.

=================  ================================================  ==========================
reason             meaning                                           config key
=================  ================================================  ==========================
empty              no question text                                  -
placeholder        template residue: ``[...]``, ``<question>``, XXX  -
preamble           chatter: "Here are", "Sure", "Question 1:"        -
too_short          fewer base-model tokens than allowed              ``question_min_tokens``
too_long           more base-model tokens than allowed               ``question_max_tokens``
not_a_question     no '?' and no interrogative/imperative opening    -
missing_evidence   the answer gave no evidence span                  -
ungrounded         evidence not (near-)verbatim in the chunk         ``grounding_min_ratio``
copy               the question's word n-grams are the chunk's       ``copy_ngram``, ``copy_max_overlap``
duplicate          same normalised text as an earlier question       -
near_duplicate     embedding cosine at or above the threshold        ``near_duplicate_cosine``
roundtrip_miss     BM25 does not rank the chunk in the top k         ``roundtrip_top_k``
=================  ================================================  ==========================

Example::

    reason = check_pair(question, evidence, chunk.text, n_tokens, cfg.synth)
    if reason is None and (reason := duplicates.check(question)) is None:
        duplicates.add(question)
"""

from __future__ import annotations

import re
import threading
import unicodedata
from typing import Callable, Sequence

import numpy as np

from ..config import SynthConfig

EMPTY = "empty"
PLACEHOLDER = "placeholder"
PREAMBLE = "preamble"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
NOT_A_QUESTION = "not_a_question"
MISSING_EVIDENCE = "missing_evidence"
UNGROUNDED = "ungrounded"
COPY = "copy"
DUPLICATE = "duplicate"
NEAR_DUPLICATE = "near_duplicate"
ROUNDTRIP_MISS = "roundtrip_miss"

REASONS = (
    EMPTY, PLACEHOLDER, PREAMBLE, TOO_SHORT, TOO_LONG, NOT_A_QUESTION, MISSING_EVIDENCE,
    UNGROUNDED, COPY, DUPLICATE, NEAR_DUPLICATE, ROUNDTRIP_MISS,
)  # fmt: skip
"""Every reason code a check can return."""


# --------------------------------------------------------------------------- normalize


_SPACE = re.compile(r"\s+")


def _is_edge_punctuation(char: str) -> bool:
    return unicodedata.category(char)[0] in "PS"


def normalize(text: str) -> str:
    """Text as the checks compare it: NFKC, casefolded, single spaces, no edge punctuation.

    Example::

        normalize("  What is  the FLOW rate? ")   # 'what is the flow rate'
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    text = _SPACE.sub(" ", folded).strip()
    start, end = 0, len(text)
    while start < end and (_is_edge_punctuation(text[start]) or text[start] == " "):
        start += 1
    while end > start and (_is_edge_punctuation(text[end - 1]) or text[end - 1] == " "):
        end -= 1
    return text[start:end]


_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return _WORD.findall(normalize(text))


# --------------------------------------------------------------------------- grounded


_ELLIPSIS = re.compile(r"\s*(?:\.{3,}|…)\s*")


def grounding_ratio(evidence: str, chunk_text: str) -> float:
    """How well ``evidence`` matches some span of the chunk, in [0, 1] (1 = verbatim).

    Compared after :func:`normalize`: the best partial match of the evidence in the
    chunk; an evidence longer than the chunk scores the share of it the chunk accounts
    for (so a chunk plus invented text does not pass); an evidence quoted with an
    ellipsis counts as its worst-matching part.

    Example::

        grounding_ratio("the  Flow rate", "The flow rate is 3 m3/s.")   # 1.0
    """
    from rapidfuzz import fuzz
    from rapidfuzz.distance import LCSseq

    chunk = normalize(chunk_text)
    parts = [normalize(part) for part in _ELLIPSIS.split(evidence)]
    parts = [part for part in parts if part]
    if not parts or not chunk:
        return 0.0
    scores = []
    for part in parts:
        if part in chunk:
            scores.append(1.0)
        elif len(part) > len(chunk):  # the share of the evidence the chunk accounts for
            scores.append(LCSseq.similarity(part, chunk) / len(part))
        else:
            scores.append(fuzz.partial_ratio(part, chunk) / 100)
    return min(scores)


def check_grounded(evidence: str, chunk_text: str, min_ratio: float) -> str | None:
    """``None`` if the evidence span is in the chunk (near-verbatim at ``min_ratio``).

    Returns ``'missing_evidence'`` for an empty span, ``'ungrounded'`` otherwise.

    Example::

        check_grounded("flow rate is 3 m3/s", "The flow rate is 3 m3/s.", 0.85)   # None
        check_grounded("the turbine is red", "The flow rate is 3 m3/s.", 0.85)    # 'ungrounded'
    """
    if not evidence or not normalize(evidence):
        return MISSING_EVIDENCE
    return None if grounding_ratio(evidence, chunk_text) >= min_ratio else UNGROUNDED


# --------------------------------------------------------------------------- not a copy


def copy_overlap(question: str, chunk_text: str, n: int) -> float:
    """Share of the question's word ``n``-grams that occur in the chunk, in [0, 1].

    A question shorter than ``n`` words counts as 1.0 when it occurs whole in the
    chunk (as a run of words) and 0.0 otherwise.

    Example::

        copy_overlap("the flow rate is 3 m3 per second", "The flow rate is 3 m3 per second.", 5)   # 1.0
    """
    question_words = _words(question)
    chunk_words = _words(chunk_text)
    if not question_words:
        return 0.0
    if len(question_words) < n:
        needle = " " + " ".join(question_words) + " "
        return 1.0 if needle in " " + " ".join(chunk_words) + " " else 0.0
    question_grams = [tuple(question_words[i : i + n]) for i in range(len(question_words) - n + 1)]
    chunk_grams = {tuple(chunk_words[i : i + n]) for i in range(len(chunk_words) - n + 1)}
    return sum(gram in chunk_grams for gram in question_grams) / len(question_grams)


def check_not_copy(question: str, chunk_text: str, n: int, max_overlap: float) -> str | None:
    """``'copy'`` when more than ``max_overlap`` of the question's word n-grams are the chunk's.

    A question lifted from the chunk teaches the model string matching, not retrieval.

    Example::

        check_not_copy("What does the controller do when E415 appears?", chunk.text, 5, 0.5)   # None
    """
    return COPY if copy_overlap(question, chunk_text, n) > max_overlap else None


# --------------------------------------------------------------------------- well-formed


IMPERATIVES = frozenset(
    "list describe explain name give identify summarize summarise compare define outline state tell find show".split()
)
QUESTION_OPENINGS = IMPERATIVES | frozenset(
    """what how which why when where who whom whose whats is are was were am do does did can could
    should would will shall may might must has have had isn aren wasn weren doesn don didn""".split()
)
"""First words that make a question without a '?' (interrogatives, auxiliaries, imperatives)."""

_PREAMBLE = re.compile(
    r"""^\W*(
        here\s+(is|are|'s)\b | sure\b | certainly\b | of\s+course\b | okay\b | ok\b | absolutely\b
      | as\s+an\s+(ai|language\s+model)\b
      | below\s+(is|are)\b | the\s+following\b | generated\s+question | the\s+question\s+is\b
      | questions?\s*\#?\s*\d*\s*[:.)\-] | q\s*\d*\s*[:.)] | \d+\s*[.)]\s
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_PLACEHOLDER = re.compile(
    r"""\[\s*(\.{2,}|…)\s*\] | \[\s*(insert|your|placeholder|question|answer|topic|todo)\b[^\]]*\]
      | <\s*/?\s*(question|answer|chunk|context|evidence|text|passage|document|placeholder|insert)[^>]*>
      | \{\{?\s*\w*\s*\}?\} | \bx{3,}\b | \blorem\s+ipsum\b | _{3,}""",
    re.IGNORECASE | re.VERBOSE,
)


def check_well_formed(question: str, n_tokens: int, min_tokens: int, max_tokens: int) -> str | None:
    """``None`` for a real question of acceptable length; else the first failing reason.

    Checks, in order: ``'empty'``, ``'placeholder'``, ``'preamble'``, ``'too_short'`` /
    ``'too_long'`` (``n_tokens`` counted with the base model's tokenizer), and
    ``'not_a_question'`` (no '?' and no interrogative or imperative first word).

    Example::

        check_well_formed("How long is the warranty?", 6, 4, 64)   # None
        check_well_formed("Here are two questions:", 5, 4, 64)     # 'preamble'
    """
    text = question.strip() if question else ""
    if not text:
        return EMPTY
    if _PLACEHOLDER.search(text):
        return PLACEHOLDER
    if not normalize(text):
        return EMPTY
    if _PREAMBLE.search(text):
        return PREAMBLE
    if n_tokens < min_tokens:
        return TOO_SHORT
    if n_tokens > max_tokens:
        return TOO_LONG
    if not _looks_like_question(text):
        return NOT_A_QUESTION
    return None


def _looks_like_question(text: str) -> bool:
    if not any(char.isalpha() for char in text):
        return False
    if text.rstrip("\"'”’) ").endswith(("?", "？")):
        return True
    words = _words(text)
    return bool(words) and words[0] in QUESTION_OPENINGS


# --------------------------------------------------------------------------- one pair


def check_pair(question: str, evidence: str, chunk_text: str, n_tokens: int, config: SynthConfig) -> str | None:
    """Run well-formed, grounded and not-a-copy in that order; ``None`` or the first reason.

    Duplicates are checked separately (:class:`DuplicateFilter`): they depend on the
    questions accepted so far.

    Example::

        reason = check_pair(q.question, q.evidence, chunk.text, count_tokens(tok, q.question)[0], cfg.synth)
    """
    return (
        check_well_formed(question, n_tokens, config.question_min_tokens, config.question_max_tokens)
        or check_grounded(evidence, chunk_text, config.grounding_min_ratio)
        or check_not_copy(question, chunk_text, config.copy_ngram, config.copy_max_overlap)
    )


# --------------------------------------------------------------------------- duplicates


class DuplicateFilter:
    """Remembers the run's accepted questions and flags exact and near duplicates.

    Exact: the same text after :func:`normalize`. Near: cosine similarity of the
    embeddings from ``encode`` at or above ``threshold`` (``encode=None`` checks exact
    duplicates only). Vectors live in one growing matrix, so checking against 10k
    questions is a single matrix-vector product.

    Example::

        duplicates = DuplicateFilter(lambda texts: model.encode(texts), threshold=0.95)
        duplicates.add_many(already_accepted)          # on resume
        if duplicates.check(question) is None: duplicates.add(question)
    """

    def __init__(self, encode: Callable[[list[str]], np.ndarray] | None, threshold: float):
        self.encode = encode
        self.threshold = threshold
        self._seen: set[str] = set()
        self._vectors: np.ndarray | None = None
        self._size = 0
        self._last: tuple[str, np.ndarray] | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, question: str) -> str | None:
        """``'duplicate'``, ``'near_duplicate'`` or ``None``; does not remember the question."""
        if normalize(question) in self._seen:
            return DUPLICATE
        if self.encode is None:
            return None
        vector = self._embed_one(question)
        with self._lock:
            # einsum, not `@`: a matrix-vector product through a multi-threaded BLAS
            # thrashes on a busy machine, and this runs once per question
            if self._size and float(np.einsum("ij,j->i", self._vectors[: self._size], vector).max()) >= self.threshold:
                return NEAR_DUPLICATE
        return None

    def add(self, question: str) -> None:
        """Remember an accepted question."""
        self.add_many([question])

    def add_many(self, questions: Sequence[str]) -> None:
        """Remember many accepted questions at once (one encode call), e.g. on resume."""
        fresh: list[str] = []
        keys: set[str] = set()
        for question in questions:
            key = normalize(question)
            if key and key not in self._seen and key not in keys:
                keys.add(key)
                fresh.append(question)
        if not fresh:
            return
        vectors = None
        if self.encode is not None:
            if len(fresh) == 1:
                vectors = self._embed_one(fresh[0])[None, :]
            else:
                vectors = _unit_rows(self.encode(list(fresh)))
        with self._lock:
            self._seen.update(keys)
            if vectors is not None:
                self._append(vectors)

    def _embed_one(self, question: str) -> np.ndarray:
        last = self._last
        if last is not None and last[0] == question:  # check() then add() of the same question
            return last[1]
        vector = _unit_rows(self.encode([question]))[0]
        self._last = (question, vector)
        return vector

    def _append(self, vectors: np.ndarray) -> None:
        needed = self._size + len(vectors)
        if self._vectors is None:
            self._vectors = np.empty((max(needed, 64), vectors.shape[1]), dtype=np.float32)
        elif needed > len(self._vectors):
            grown = np.empty((max(needed, 2 * len(self._vectors)), self._vectors.shape[1]), dtype=np.float32)
            grown[: self._size] = self._vectors[: self._size]
            self._vectors = grown
        self._vectors[self._size : needed] = vectors
        self._size = needed


def _unit_rows(vectors) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.where(norms == 0, 1, norms)


# --------------------------------------------------------------------------- round trip


class RoundTripChecker:
    """Keeps a question only if BM25 over the run's chunks ranks its own chunk in the top k.

    Off by default (``roundtrip_top_k = 0``): it rejects good paraphrasing questions
    along with vague ones, so it suits corpora where BM25 is already decent.

    Example::

        checker = RoundTripChecker(chunks, top_k=cfg.synth.roundtrip_top_k)
        checker.check("How long is the turbine warranty?", chunk.chunk_id)   # None or 'roundtrip_miss'
    """

    def __init__(self, chunks: Sequence, top_k: int):
        import bm25s

        self.top_k = top_k
        self.chunk_ids = [chunk.chunk_id for chunk in chunks]
        self._bm25s = bm25s
        self._retriever = bm25s.BM25()
        self._retriever.index(
            bm25s.tokenize([chunk.text for chunk in chunks], stopwords="en", show_progress=False),
            show_progress=False,
        )

    def rank(self, query: str, chunk_id: str) -> int | None:
        """1-based rank of ``chunk_id`` for ``query`` among the top ``top_k``, or ``None``."""
        k = min(self.top_k, len(self.chunk_ids))
        if k == 0:
            return None
        tokens = self._bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)
        if not tokens[0]:
            return None
        documents, scores = self._retriever.retrieve(tokens, k=k, show_progress=False)
        for position, (index, score) in enumerate(zip(documents[0], scores[0]), start=1):
            if score > 0 and self.chunk_ids[int(index)] == chunk_id:
                return position
        return None

    def check(self, query: str, chunk_id: str) -> str | None:
        """``None`` if the chunk is in the top k for the query, else ``'roundtrip_miss'``."""
        return None if self.rank(query, chunk_id) is not None else ROUNDTRIP_MISS
