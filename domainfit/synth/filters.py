"""Checks a generated question must pass before it becomes a pair.

Each check is a small pure function that returns ``None`` when the question passes
and a short reason code when it does not (the code lands in ``rejected.jsonl``).
:func:`check_pair` runs the stateless checks in a fixed order; duplicates are
checked by a :class:`DuplicateFilter` that remembers the run's questions, and the
round trip by a :class:`RoundTripChecker` over all the run's chunks. "Question"
here means any query style (``synth.query_styles``): claims and keyword queries
pass the same checks except the question-form one.

==================  ==================================================  ==========================
reason              meaning                                             config key
==================  ==================================================  ==========================
empty               no question text                                    -
placeholder         template residue: ``[...]``, ``<question>``, XXX    -
preamble            chatter: "Here are", "Sure", "Question 1:"          -
too_short           fewer base-model tokens than allowed                ``question_min_tokens``
too_long            more base-model tokens than allowed                 ``question_max_tokens``
not_a_question      no '?' and no interrogative/imperative opening      -
wrong_style         a claim or keyword query that is not one            ``query_styles``
prompt_example      (near) copy of one of the prompt's examples         -
missing_evidence    the answer gave no evidence span                    -
ungrounded          evidence not (near-)verbatim in the chunk           ``grounding_min_ratio``
copy                the question's word n-grams are the chunk's         ``copy_ngram``, ``copy_max_overlap``
not_self_contained  points at the passage: "this study", "the authors"  -
duplicate           same normalised text as an earlier question         -
near_duplicate      embedding cosine at or above the threshold          ``near_duplicate_cosine``
roundtrip_miss      its chunk is not in the top k of all chunks         ``roundtrip``, ``roundtrip_top_k``
==================  ==================================================  ==========================

Example::

    reason = check_pair(question, evidence, chunk.text, n_tokens, cfg.synth)
    if reason is None and (reason := duplicates.check(question)) is None:
        duplicates.add(question)
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from typing import Callable, Sequence

import numpy as np

from ..artifacts import normalize_text
from ..bm25 import BM25Index
from ..config import SynthConfig
from ..encoding import unit_rows

EMPTY = "empty"
PLACEHOLDER = "placeholder"
PREAMBLE = "preamble"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
NOT_A_QUESTION = "not_a_question"
WRONG_STYLE = "wrong_style"
PROMPT_EXAMPLE = "prompt_example"
MISSING_EVIDENCE = "missing_evidence"
UNGROUNDED = "ungrounded"
COPY = "copy"
NOT_SELF_CONTAINED = "not_self_contained"
DUPLICATE = "duplicate"
NEAR_DUPLICATE = "near_duplicate"
ROUNDTRIP_MISS = "roundtrip_miss"

REASONS = (
    EMPTY, PLACEHOLDER, PREAMBLE, TOO_SHORT, TOO_LONG, NOT_A_QUESTION, WRONG_STYLE, PROMPT_EXAMPLE,
    MISSING_EVIDENCE, UNGROUNDED, COPY, NOT_SELF_CONTAINED, DUPLICATE, NEAR_DUPLICATE, ROUNDTRIP_MISS,
)  # fmt: skip
"""Every reason code a check can return."""


# --------------------------------------------------------------------------- normalize


def _is_edge_punctuation(char: str) -> bool:
    return unicodedata.category(char)[0] in "PS"


def normalize(text: str) -> str:
    """Text as the checks compare it: :func:`~domainfit.artifacts.normalize_text` of the
    NFKC-casefolded text, without edge punctuation.

    ``normalize_text`` is what "the same text" means in a run, and pair ids hash it, so
    it cannot change without renaming every pair; questions are compared more loosely
    on top of it, so "Flow rate?" and "ﬂow rate" count as one question.

    Example::

        normalize("  What is  the FLOW rate? ")   # 'what is the flow rate'
    """
    text = normalize_text(unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold()))
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


KEYWORDS_MAX_WORDS = 12
"""A keyword query longer than this is a sentence, not keywords."""


def check_well_formed(
    question: str, n_tokens: int, min_tokens: int, max_tokens: int, style: str = "question"
) -> str | None:
    """``None`` for a real query of acceptable length; else the first failing reason.

    Checks, in order: ``'empty'``, ``'placeholder'``, ``'preamble'``, ``'too_short'`` /
    ``'too_long'`` (``n_tokens`` counted with the base model's tokenizer), then the
    form its ``style`` asks for: a question has a '?' or an interrogative or
    imperative first word (``'not_a_question'``); a claim is not a question, and
    keywords are neither a question nor longer than :data:`KEYWORDS_MAX_WORDS` words
    (``'wrong_style'``).

    Example::

        check_well_formed("How long is the warranty?", 6, 4, 64)   # None
        check_well_formed("Here are two questions:", 5, 4, 64)     # 'preamble'
        check_well_formed("Is the warranty long?", 5, 4, 64, "claim")   # 'wrong_style'
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
    if style == "question":
        return None if _looks_like_question(text) else NOT_A_QUESTION
    if not any(char.isalpha() for char in text) or _ends_with_question_mark(text):
        return WRONG_STYLE
    if style == "keywords" and len(_words(text)) > KEYWORDS_MAX_WORDS:
        return WRONG_STYLE
    return None


def _ends_with_question_mark(text: str) -> bool:
    return text.rstrip("\"'”’) ").endswith(("?", "？"))


def _looks_like_question(text: str) -> bool:
    if not any(char.isalpha() for char in text):
        return False
    if _ends_with_question_mark(text):
        return True
    words = _words(text)
    return bool(words) and words[0] in QUESTION_OPENINGS


# --------------------------------------------------------------------------- self-contained

_DOCUMENT_NOUNS = r"passage|text|document|excerpt|abstract|article|paper|paragraph|section|chapter|context|report"
_STUDY_NOUNS = (
    r"study|studies|research|work|experiments?|investigations?|analys[ie]s|trials?|surveys?|review|results|findings"
    r"|data|dataset|measurements?|observations?|conclusions?|participants|cohort|mutations?|authors?"
)
_METHOD_NOUNS = r"methods?|approach|technique|model|system|framework|algorithm|scheme|procedure"
_PEOPLE = r"authors?|researchers|investigators|participants|respondents"
_OWN_WORK = r"study|paper|work|research|investigation|analysis|experiments?|findings|results|article|passage|text"
_TIME_NOUNS = (
    r"year|month|week|day|morning|afternoon|evening|night|weekend|season|quarter|decade|century"
    r"|spring|summer|autumn|fall|winter|time"
)
# Words that end a reference to the passage's own subject: "what do the results show",
# "what is the study about", "the paper's claim" (but not "the results of the Apollo
# mission" or "the text encoding", where the noun is followed by what names it).
_REFERENCE_END = (
    r"(?:\s*(?:$|[?.,;:!)]|'s\b|’s\b)|\s+(?:is|are|was|were|show|shows|showed|shown|find|finds|found|suggest"
    r"|suggests|suggested|report|reports|reported|describe|describes|described|say|says|said|state|states"
    r"|stated|mention|mentions|mentioned|discuss|discusses|discussed|propose|proposes|proposed|present"
    r"|presents|presented|conclude|concludes|concluded|indicate|indicates|indicated|reveal|reveals|revealed"
    r"|demonstrate|demonstrates|demonstrated|imply|implies|implied|examine|examines|examined|investigate"
    r"|investigates|investigated|focus|focuses|focused|explain|explains|explained|claim|claims|claimed|argue"
    r"|argues|argued|mean|means|refer|refers|provide|provides|provided|identify|identifies|identified"
    r"|measure|measures|measured|observe|observes|observed|conduct|conducts|conducted"
    r"|do|does|did|have|has|had|can|could|would|should|will|about|regarding"
    r"|what|how|which|why|who|when|where)\b)"
)
_DEMONSTRATIVE = re.compile(rf"\b(?:this|these)\b(?!\s+(?:{_TIME_NOUNS})s?\b)(?:\s+([\w-]+))?", re.IGNORECASE)
_NOT_SELF_CONTAINED = re.compile(
    rf"""\b(?:that|those)\s+(?:{_DOCUMENT_NOUNS}|{_STUDY_NOUNS}|{_METHOD_NOUNS})\b
      | \bthe\s+above\b | \babove[-\s]mentioned\b | \b(?:aforementioned|aforesaid|foregoing)\b
      | \b(?:mentioned|described|listed|shown|stated|noted|outlined|discussed|cited)\s+(?:above|earlier|previously)\b
      | \b(?:given|provided|following|previous|preceding)\s+(?:{_DOCUMENT_NOUNS})\b
      | \bthe\s+(?:proposed|described|mentioned|reported|presented|discussed|given|said)
               \s+(?:[\w-]+\s+)?(?:{_DOCUMENT_NOUNS}|{_STUDY_NOUNS}|{_METHOD_NOUNS})\b
      | \bthe\s+(?:present|current|new|previous|following)\s+(?:[\w-]+\s+)?(?:{_OWN_WORK})\b
      | \bthe\s+(?:{_PEOPLE})\b(?!\s+of\b)
      | \bthe\s+(?:{_DOCUMENT_NOUNS}|{_STUDY_NOUNS}){_REFERENCE_END}""",
    re.IGNORECASE | re.VERBOSE,
)


def check_self_contained(question: str) -> str | None:
    """``'not_self_contained'`` when the question points at the passage instead of naming its subject.

    A search query is typed by someone who has not read the chunk: "What is the
    purpose of this study?" or "What do the authors conclude?" can be answered by
    every abstract in a corpus, so training on it teaches nothing (and the chunk
    can't be found with it). Caught: *this/these* + anything but a time word or a
    noun the question already named ("stresses ... these stresses" passes);
    *that/those* + a study or document noun; *above/aforementioned*; *the present /
    proposed / described ... study*; *the authors / researchers* (unless "of ...");
    *the study / results / paper ...* when nothing follows that names it ("the
    results of the Apollo mission" passes); *in / according to the passage*.

    Example::

        check_self_contained("What is the purpose of this study?")                  # 'not_self_contained'
        check_self_contained("What is the transition Reynolds number on a flat plate?")   # None
    """
    if _NOT_SELF_CONTAINED.search(question):
        return NOT_SELF_CONTAINED
    for match in _DEMONSTRATIVE.finditer(question):
        if not _names_an_earlier_word(question[: match.start()], match.group(1)):
            return NOT_SELF_CONTAINED
    return None


_BACK_REFERENCE_VERBS = frozenset(
    "compare compares compared change changes changed differ differs affect affects affected relate relates "
    "measured calculated determined reflect reflects include includes divided split were".split()
)


def _names_an_earlier_word(before: str, noun: str | None) -> bool:
    """The demonstrative points back into the question itself, not at the passage.

    "... stresses ... these stresses", or "How much was X in 2023, and how does this
    compare to 2022?" (a second clause about the first one).
    """
    if not noun:
        return False
    word = noun.lower()
    second_clause = re.search(r",|\band\b", before)
    if second_clause and (word in _BACK_REFERENCE_VERBS or re.search(r"\bof\s*$", before)):
        return True
    stem = word.rstrip("s")
    return len(stem) > 2 and any(earlier.rstrip("s") == stem for earlier in _words(before))


# --------------------------------------------------------------------------- not a prompt example


_FUNCTION_WORDS = frozenset(
    """a an the is are was were be been do does did of to in on at for by with from and or
    i my me we our you your it its can could should would will shall may might must how what
    which who whom whose why when where there that this""".split()
)

PROMPT_EXAMPLE_OVERLAP = 0.75
"""Share of content words shared with an example (of the longer's) that counts as a copy of it."""

PROMPT_EXAMPLE_OFF_CHUNK_OVERLAP = 0.6
"""A lower share that counts when a shared word is not in the chunk: the example's subject leaked in."""


def content_words(text: str) -> frozenset[str]:
    """The words of ``text`` that carry its subject: normalised, minus function words and 1-letter words.

    Example::

        content_words("How long is a contractor pass valid?")   # {'long', 'contractor', 'pass', 'valid'}
    """
    return frozenset(word for word in _words(text) if len(word) > 1 and word not in _FUNCTION_WORDS)


@functools.lru_cache(maxsize=256)
def _example_forms(example: str) -> tuple[str, frozenset[str]]:
    """An example query normalised and as content words: the same few examples face every question."""
    return normalize(example), content_words(example)


def check_not_prompt_example(question: str, examples: Sequence[str], chunk_text: str | None = None) -> str | None:
    """``'prompt_example'`` when the question is one of the prompt's few-shot examples, or nearly.

    A small model continuing a few-shot prompt often writes an example's question
    again ("How long is a contractor pass valid?" under a biomedical abstract), or
    the example with the chunk's name swapped in ("What does fault E17 on the
    NCX-400 indicate?"). Near means the same text after :func:`normalize`, or
    :data:`PROMPT_EXAMPLE_OVERLAP` of the content words (:func:`content_words`) of
    the longer of the two in common, or :data:`PROMPT_EXAMPLE_OFF_CHUNK_OVERLAP` when
    one of the shared words is nowhere in ``chunk_text``.

    Example::

        check_not_prompt_example("How long is the contractor pass valid for?", ["How long is a contractor pass valid?"])
        # 'prompt_example'
    """
    key = normalize(question)
    words = content_words(question)
    in_chunk = {word.rstrip("s") for word in content_words(chunk_text)} if chunk_text is not None else None
    for example in examples:
        example_key, theirs = _example_forms(example)
        if key == example_key:
            return PROMPT_EXAMPLE
        if not words or not theirs:
            continue
        shared = words & theirs
        overlap = len(shared) / max(len(words), len(theirs))
        if overlap >= PROMPT_EXAMPLE_OVERLAP:
            return PROMPT_EXAMPLE
        off_chunk = in_chunk is not None and any(word.rstrip("s") not in in_chunk for word in shared)
        if off_chunk and overlap >= PROMPT_EXAMPLE_OFF_CHUNK_OVERLAP:
            return PROMPT_EXAMPLE
    return None


# --------------------------------------------------------------------------- one pair


def check_pair(
    question: str,
    evidence: str,
    chunk_text: str,
    n_tokens: int,
    config: SynthConfig,
    style: str = "question",
    examples: Sequence[str] | None = None,
) -> str | None:
    """Run the stateless checks in the table's order; ``None`` or the first reason.

    Well-formed (for the query ``style``), not a prompt example (``examples``: the
    few-shot queries of the prompt; default: every style's), grounded, not a copy,
    self-contained. Duplicates and the round trip are checked separately
    (:class:`DuplicateFilter`, :class:`RoundTripChecker`): they depend on the run.

    Example::

        reason = check_pair(q.question, q.evidence, chunk.text, count_tokens(tok, q.question)[0], cfg.synth)
    """
    if examples is None:
        from .prompts import example_queries

        examples = example_queries()
    return (
        check_well_formed(question, n_tokens, config.question_min_tokens, config.question_max_tokens, style)
        or check_not_prompt_example(question, examples, chunk_text)
        or check_grounded(evidence, chunk_text, config.grounding_min_ratio)
        or check_not_copy(question, chunk_text, config.copy_ngram, config.copy_max_overlap)
        or check_self_contained(question)
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
    return unit_rows(np.atleast_2d(np.asarray(vectors, dtype=np.float32)))


# --------------------------------------------------------------------------- round trip


class RoundTripChecker:
    """Keeps a question only if its own chunk ranks in the top k of all the run's chunks.

    A question that its chunk does not answer better than the other chunks do is
    vague ("What is a valid encoding name?") or about something else, even when its
    evidence sentence is grounded. Ranking is by BM25 (cheap, the default) or, when
    ``encode`` is given, by cosine of the base model's embeddings (``synth.roundtrip
    = "embedding"``; every chunk is embedded once). A chunk with the same text as the
    question's own chunk (:func:`~domainfit.artifacts.normalize_text`) counts as it.

    Example::

        checker = RoundTripChecker(chunks, top_k=cfg.synth.roundtrip_top_k)
        checker.check("How long is the turbine warranty?", chunk.chunk_id)   # None or 'roundtrip_miss'
    """

    def __init__(self, chunks: Sequence, top_k: int, *, encode: Callable[[list[str]], np.ndarray] | None = None):
        self.top_k = top_k
        self.chunk_ids = [chunk.chunk_id for chunk in chunks]
        texts = [chunk.text for chunk in chunks]
        self._same_text = [normalize_text(text) for text in texts]
        self._position = {chunk_id: index for index, chunk_id in enumerate(self.chunk_ids)}
        self.encode = encode
        if encode is not None:
            self._vectors = _unit_rows(encode(texts)) if texts else np.zeros((0, 1), dtype=np.float32)
        else:
            self._bm25 = BM25Index(texts)

    def _top(self, query: str, k: int) -> list[int]:
        """Indices of the ``k`` best chunks for ``query``, best first (only chunks that match at all)."""
        if self.encode is not None:
            scores = np.einsum("ij,j->i", self._vectors, _unit_rows(self.encode([query]))[0])
            return [int(index) for index in np.argsort(-scores, kind="stable")[:k]]
        return [index for index, score in self._bm25.top(query, k) if score > 0]

    def rank(self, query: str, chunk_id: str) -> int | None:
        """1-based rank of ``chunk_id`` (or a same-text chunk) for ``query`` within the top ``top_k``, or ``None``."""
        k = min(self.top_k, len(self.chunk_ids))
        own = self._position.get(chunk_id)
        if k == 0 or own is None:
            return None
        for position, index in enumerate(self._top(query, k), start=1):
            if index == own or self._same_text[index] == self._same_text[own]:
                return position
        return None

    def check(self, query: str, chunk_id: str) -> str | None:
        """``None`` if the chunk is in the top k for the query, else ``'roundtrip_miss'``."""
        return None if self.rank(query, chunk_id) is not None else ROUNDTRIP_MISS
