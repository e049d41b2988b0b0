"""Token-aware chunks with overlap and stable ids.

A chunk is what the embedding model sees, so its size is measured with the base
model's own tokenizer: all-MiniLM-L6-v2 reads 256 tokens, and chunks of at most
``chunk_max_tokens`` (200) leave room for special tokens and tokenizer drift. A
document is cut into paragraphs and sentences, which are packed greedily; a chunk
ends at a paragraph break when one falls in its second half, else at a sentence
end, and the next chunk repeats whole trailing sentences up to
``chunk_overlap_tokens`` so a fact cut at a boundary is whole in one of the two.
A sentence longer than a whole chunk is cut into token windows (of the overlap
size, so its chunks overlap too) at word starts.

``chunk_id`` hashes the source path and the text, so re-running over the same
folder gives the same ids and a changed document changes only its own chunks.

Example::

    tokenizer = load_tokenizer("minilm")
    chunks = chunk_documents(load_documents(folder, cfg).documents, tokenizer, cfg)
    eligible = [c for c in chunks if is_llm_eligible(c, cfg)]
"""

from __future__ import annotations

import functools
import re
import weakref
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import Callable, Iterable, Sequence

from ..artifacts import Chunk, content_hash
from ..config import SynthConfig
from ..errors import ModelNotFoundError, first_line
from .documents import Document

PARAGRAPH_CUT_MIN_FILL = 0.5
"""A chunk ends early at a paragraph break only if it is at least this full."""


@functools.lru_cache(maxsize=4)
def load_tokenizer(base_model: str = "minilm", *, allow_downloads: bool = False):
    """The Hugging Face (fast) tokenizer of the base embedding model, loaded offline.

    Example::

        tokenizer = load_tokenizer("minilm")
        count_tokens(tokenizer, ["How long is the warranty?"])   # [7]
    """
    from ..models import enforce_offline, resolve

    enforce_offline(allow_downloads)
    location = resolve(base_model, allow_downloads=allow_downloads)
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(location))
    except (OSError, ValueError) as error:
        raise ModelNotFoundError(
            f"cannot load the tokenizer of '{base_model}' from {location}: {first_line(error)}"
        ) from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelNotFoundError(
            f"the tokenizer of '{base_model}' has no fast (Rust) version; chunking needs its offset mapping"
        )
    return tokenizer


def count_tokens(tokenizer, texts: str | Sequence[str]) -> list[int]:
    """Token counts (no special tokens, no truncation) of each text, in one batch call.

    Example::

        count_tokens(tokenizer, ["a b", "c"])   # [2, 1]
    """
    if isinstance(texts, str):
        texts = [texts]
    return _backend(tokenizer).count(list(texts))


class _Backend:
    """Batch token counts and offsets from the tokenizer's Rust core.

    The core of a Hugging Face fast tokenizer keeps the truncation and padding of its
    ``tokenizer.json`` (MiniLM's truncates at 128): a private copy without them counts
    whole texts, and skips the Python-side conversion the ``tokenizer(...)`` call pays.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.core = None
        core = getattr(tokenizer, "backend_tokenizer", None)
        if core is not None:
            from tokenizers import Tokenizer

            self.core = Tokenizer.from_str(core.to_str())
            self.core.no_truncation()
            self.core.no_padding()

    def count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        if self.core is None:
            encoded = self.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)
            return [len(ids) for ids in encoded["input_ids"]]
        encode = getattr(self.core, "encode_batch_fast", self.core.encode_batch)
        return [len(encoding.ids) for encoding in encode(texts, add_special_tokens=False)]

    def offsets(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        if not texts:
            return []
        if self.core is None:
            encoded = self.tokenizer(
                texts, add_special_tokens=False, truncation=False, verbose=False, return_offsets_mapping=True
            )
            return [[tuple(pair) for pair in offsets] for offsets in encoded["offset_mapping"]]
        return [encoding.offsets for encoding in self.core.encode_batch(texts, add_special_tokens=False)]


_backends: "weakref.WeakKeyDictionary[object, _Backend]" = weakref.WeakKeyDictionary()


def _backend(tokenizer) -> _Backend:
    try:
        backend = _backends.get(tokenizer)
    except TypeError:  # not weak-referenceable: build one per call
        return _Backend(tokenizer)
    if backend is None:
        backend = _backends[tokenizer] = _Backend(tokenizer)
    return backend


# --------------------------------------------------------------------------- units


@dataclass(frozen=True)
class _Unit:
    """A sentence (or a window of a long one): [start, end) in the document text."""

    start: int
    end: int
    paragraph_start: bool


_PARAGRAPH = re.compile(r"(?:[^\n]|\n(?![ \t]*\n))+")
_LINE = re.compile(r"[^\n]+")
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|[。！？]+")


def split_sentences(text: str) -> list[tuple[int, int, bool]]:
    """``(start, end, starts_paragraph)`` spans of the sentences and lines of ``text``.

    Paragraphs are separated by blank lines; inside one, a line break or a sentence
    end ('.', '!', '?' before whitespace) starts a new unit. Spans exclude whitespace.

    Example::

        split_sentences("One. Two.\\n\\nThree")   # [(0, 4, True), (5, 9, False), (11, 16, True)]
    """
    spans = []
    for paragraph in _PARAGRAPH.finditer(text):
        first = True
        for line in _LINE.finditer(text, paragraph.start(), paragraph.end()):
            cuts = [line.start()]
            cuts += [m.end() for m in _SENTENCE_END.finditer(text, line.start(), line.end())]
            cuts.append(line.end())
            for left, right in zip(cuts, cuts[1:]):
                start, end = _strip_span(text, left, right)
                if start < end:
                    spans.append((start, end, first))
                    first = False
    return spans


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _units(text: str, backend: _Backend, max_tokens: int, window_tokens: int) -> tuple[list[_Unit], list[int]]:
    """Sentence units with their token counts; a sentence over ``max_tokens`` is cut into windows."""
    spans = split_sentences(text)
    counts = backend.count([text[start:end] for start, end, _ in spans])
    long = [index for index, count in enumerate(counts) if count > max_tokens]
    long_offsets = dict(zip(long, backend.offsets([text[spans[i][0] : spans[i][1]] for i in long])))
    units: list[_Unit] = []
    unit_counts: list[int] = []
    for index, ((start, end, paragraph_start), count) in enumerate(zip(spans, counts)):
        if index not in long_offsets:
            units.append(_Unit(start, end, paragraph_start))
            unit_counts.append(count)
            continue
        token_spans = long_offsets[index]
        for first, last in _windows(text[start:end], token_spans, window_tokens):
            # byte-level BPE offsets may include the space before a token
            left, right = _strip_span(text, start + token_spans[first][0], start + token_spans[last - 1][1])
            if left < right:
                units.append(_Unit(left, right, paragraph_start and left == start))
                unit_counts.append(last - first)
    return units, unit_counts


def _windows(text: str, token_spans: list[tuple[int, int]], size: int) -> Iterable[tuple[int, int]]:
    """``[first, last)`` token ranges of at most ``size`` tokens, cut before a word where possible."""
    first = 0
    total = len(token_spans)
    while first < total:
        last = min(first + size, total)
        if last < total:
            for cut in range(last, first, -1):
                begin = token_spans[cut][0]
                if begin > 0 and text[begin - 1].isspace():
                    last = cut
                    break
        yield first, last
        first = last


# --------------------------------------------------------------------------- packing


def chunk_document(document: Document, tokenizer, config: SynthConfig) -> list[Chunk]:
    """Cut one document into chunks of at most ``config.chunk_max_tokens`` tokens.

    Chunks follow paragraph, then sentence boundaries, overlap by whole trailing
    sentences (up to ``chunk_overlap_tokens``), and carry exact character spans:
    ``chunk.text == document.text[chunk.char_start:chunk.char_end]``. A chunk whose
    text repeats an earlier chunk of the same document is dropped.

    Example::

        chunks = chunk_document(doc, load_tokenizer("minilm"), SynthConfig())
        max(c.n_tokens for c in chunks) <= 200   # True
    """
    cap, overlap, text = config.chunk_max_tokens, config.chunk_overlap_tokens, document.text
    backend = _backend(tokenizer)
    units, counts = _units(text, backend, cap, window_tokens=overlap if overlap > 0 else cap)
    if not units:
        return []
    prefix = [0, *accumulate(counts)]
    spans = _pack(units, prefix, cap, overlap)
    n_tokens = backend.count([text[units[first].start : units[end - 1].end] for first, end in spans])
    if any(count > cap for count in n_tokens):
        # Sentence counts did not add up to the chunk's (a tokenizer that merges across
        # spaces): pack again, measuring each chunk as it is formed.
        def measure(first: int, end: int) -> int:
            return backend.count([text[units[first].start : units[end - 1].end]])[0]

        spans = _pack(units, prefix, cap, overlap, measure)
        n_tokens = backend.count([text[units[first].start : units[end - 1].end] for first, end in spans])
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for (first, end), count in zip(spans, n_tokens):
        start, stop = units[first].start, units[end - 1].end
        chunk_id = content_hash(document.source, text[start:stop])
        if chunk_id in seen:
            continue
        seen.add(chunk_id)
        chunks.append(
            Chunk(
                chunk_id=chunk_id,
                doc_id=document.doc_id,
                source=document.source,
                text=text[start:stop],
                char_start=start,
                char_end=stop,
                n_tokens=count,
            )
        )
    return chunks


def _pack(
    units: list[_Unit], prefix: list[int], cap: int, overlap: int, measure: Callable[[int, int], int] | None = None
) -> list[tuple[int, int]]:
    """``[first, end)`` unit ranges of the chunks: greedy fill, paragraph cut, sentence overlap.

    ``prefix`` holds the cumulative unit token counts; ``measure(first, end)``, when
    given, is the true token count of a candidate chunk, and a chunk over the cap
    gives back units from its end until it fits.
    """
    spans: list[tuple[int, int]] = []
    first = 0
    while first < len(units):
        end = max(first + 1, bisect_right(prefix, prefix[first] + cap, lo=first + 1) - 1)
        if end < len(units):
            end = _paragraph_cut(units, prefix, first, end, cap)
        if measure is not None:
            while end - first > 1 and measure(first, end) > cap:
                end -= 1
        spans.append((first, end))
        if end >= len(units):
            break
        first = _overlap_start(prefix, first, end, overlap, cap)
    return spans


def _paragraph_cut(units: list[_Unit], prefix: list[int], first: int, end: int, cap: int) -> int:
    """Move a chunk's end back to the last paragraph break in its second half, if any."""
    for cut in range(end - 1, first, -1):
        if prefix[cut] - prefix[first] < cap * PARAGRAPH_CUT_MIN_FILL:
            break
        if units[cut].paragraph_start:
            return cut
    return end


def _overlap_start(prefix: list[int], first: int, end: int, overlap: int, cap: int) -> int:
    """Where the next chunk starts: whole trailing units within the overlap budget.

    Always after ``first`` (progress) and such that the next chunk still fits unit ``end``.
    """
    start = end
    while start - 1 > first and prefix[end] - prefix[start - 1] <= overlap:
        start -= 1
    while start < end and prefix[end + 1] - prefix[start] > cap:
        start += 1
    return start


def chunk_documents(
    documents: Iterable[Document], tokenizer, config: SynthConfig, progress: bool = False
) -> list[Chunk]:
    """Chunks of every document, in document order; ids are unique across the run.

    Example::

        chunks = chunk_documents(result.documents, load_tokenizer("minilm"), cfg, progress=True)
        write_chunks(run.chunks, chunks)
    """
    documents = list(documents)
    iterator: Iterable[Document] = documents
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(documents, desc="chunking", unit="doc")
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for document in iterator:
        for chunk in chunk_document(document, tokenizer, config):
            if chunk.chunk_id not in seen:
                seen.add(chunk.chunk_id)
                chunks.append(chunk)
    return chunks


# --------------------------------------------------------------------------- eligibility


MIN_LETTER_SHARE = 0.4
"""Chunks whose non-space characters are less than this share letters are not asked about."""
MIN_CONTENT_WORDS = 8
"""Chunks with fewer words outside boilerplate lines are not asked about."""

_BOILERPLATE_LINE = re.compile(
    r"©|\(c\)\s*\d{4}|copyright|all rights reserved|cookie|privacy (policy|notice)|terms (of|and) "
    r"(use|service|conditions)|skip to (main )?content|sign in|log ?in|subscribe|back to top|"
    r"^\s*page \d+( of \d+)?\s*$|^\s*\d+\s*$",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_]{2,}")


def is_boilerplate(text: str) -> bool:
    """True for text that is mostly symbols/numbers or only navigation and legal lines.

    Example::

        is_boilerplate("© 2024 Acme Ltd. All rights reserved.\\nPrivacy policy | Cookies")   # True
    """
    non_space = sum(1 for char in text if not char.isspace())
    letters = sum(1 for char in text if char.isalpha())
    if non_space == 0 or letters < MIN_LETTER_SHARE * non_space:
        return True
    content_words = sum(
        len(_WORD.findall(line)) for line in text.splitlines() if not _BOILERPLATE_LINE.search(line)
    )
    return content_words < MIN_CONTENT_WORDS


def is_llm_eligible(chunk: Chunk, config: SynthConfig) -> bool:
    """Whether a chunk is worth an LLM call: at least ``min_chunk_tokens`` and not boilerplate.

    Ineligible chunks still go into ``chunks.parquet`` (they are part of the corpus
    retrieval searches), they just get no questions.

    Example::

        to_ask = [c for c in chunks if is_llm_eligible(c, cfg)]
    """
    return chunk.n_tokens >= config.min_chunk_tokens and not is_boilerplate(chunk.text)
