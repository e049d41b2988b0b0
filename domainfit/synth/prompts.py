"""The prompts synth sends, versioned: changing any text here must bump PROMPT_VERSION.

``PROMPT_VERSION`` is part of every pair's ``generator`` record and of the resume
key, so a prompt change re-asks finished chunks instead of silently mixing
generations. Two families:

* chat messages for instruction-tuned models (instructor's ``tools``/``json``
  modes fill :class:`~domainfit.synth.schema.QuestionSet` from them);
* a few-shot text completion for base models (the offline Gemma 3 270M): worked
  examples in a fixed ``Evidence:``/``Question:`` layout, parsed leniently by
  :func:`parse_completion` into the same ``QuestionSet`` shape. Evidence comes
  first because a small model copies a sentence far more reliably than it
  paraphrases one, and a question written after its evidence stays on it.

Each family has one prompt per query style (``synth.query_styles``): ``question``
(the ``synth-v1`` prompts, unchanged), ``claim`` (a statement a user would search
with) and ``keywords`` (a short keyword query); :data:`STYLE_PROMPTS` holds them.
A style's few-shot examples use the same passages and evidence as the question
prompt, so the styles differ only in what they ask for.

The chunk always sits between ``<passage>`` tags (the scripted test server finds
it there).

Example::

    messages = chat_messages(chunk.text, 2)
    prompt = completion_prompt(chunk.text, 2, style="claim")
    parse_completion(" Managers approve trips.\\nQuestion: Who approves trips?\\n")
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Iterable

PROMPT_VERSION = "synth-v1"

SYSTEM_PROMPT = (
    "You write search queries for testing a document retrieval system. Each query must be a "
    "question a real user could type without having seen the passage, that the passage answers."
)

QUESTION_INSTRUCTIONS = (
    "Write {n} different questions about the passage below. Rules:\n"
    "- each question names its subject (no 'this document', 'the passage', 'the text');\n"
    "- use your own words: do not copy phrases from the passage;\n"
    "- each question is answered by one sentence of the passage: give that sentence as the "
    "evidence, copied exactly;\n"
    "- no preamble, no numbering, no placeholders."
)


def passage_block(text: str) -> str:
    return f"<passage>\n{text.strip()}\n</passage>"


def chat_messages(chunk_text: str, n_questions: int, style: str = "question") -> list[dict[str, Any]]:
    """System + user messages asking an instruction-tuned model for ``n_questions`` queries of ``style``."""
    prompt = style_prompt(style)
    return [
        {"role": "system", "content": prompt.system},
        {
            "role": "user",
            "content": prompt.instructions.format(n=n_questions) + "\n\n" + passage_block(chunk_text),
        },
    ]


# --------------------------------------------------------------------------- completion (base models)

FEW_SHOT_EXAMPLES: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Annual leave requests go through the HR portal. Requests of more than ten working days "
        "need approval from your line manager at least four weeks before the first day of leave. "
        "Unused leave of up to five days can be carried into the next year.",
        [
            (
                "How early must a long holiday be approved by my manager?",
                "Requests of more than ten working days need approval from your line manager at least "
                "four weeks before the first day of leave.",
            ),
            (
                "How many unused leave days can I carry over to next year?",
                "Unused leave of up to five days can be carried into the next year.",
            ),
        ],
    ),
    (
        "The pump controller stores fault codes in its event log. Code E17 means the inlet "
        "pressure sensor has failed; replace the sensor before restarting the pump. The log keeps "
        "the last 500 events and can be exported to a USB stick from the service menu.",
        [
            (
                "What does fault E17 on the pump controller indicate?",
                "Code E17 means the inlet pressure sensor has failed; replace the sensor before "
                "restarting the pump.",
            ),
            (
                "How do I export the pump controller's event history?",
                "The log keeps the last 500 events and can be exported to a USB stick from the service menu.",
            ),
        ],
    ),
    (
        "3. VISITORS\n\nVisitors sign in at reception and wear a visitor badge at all times. They\n"
        "must be escorted by a member of staff in the workshop and on the roof.\n\n"
        "Contractors who visit more than once a month can apply for a contractor pass. The pass\n"
        "is valid for twelve months and is issued by the facilities team.",
        [
            (
                "Does a visitor need an escort in the workshop?",
                "They must be escorted by a member of staff in the workshop and on the roof.",
            ),
            (
                "How long is a contractor pass valid?",
                "The pass is valid for twelve months and is issued by the facilities team.",
            ),
        ],
    ),
]

COMPLETION_HEADER = (
    "Each passage is followed by sentences copied from it (Evidence) and, for each one, a question "
    "a user would ask that the sentence answers, in the user's own words (Question).\n\n"
)

# --------------------------------------------------------------------------- other query styles

CLAIM_SYSTEM_PROMPT = (
    "You write search queries for testing a document retrieval system. Each query must be a "
    "short factual statement (a claim) a real user could type to find the passage without having "
    "seen it, that the passage supports."
)
CLAIM_INSTRUCTIONS = (
    "Write {n} different claims supported by the passage below. Rules:\n"
    "- each claim is one declarative sentence, not a question;\n"
    "- each claim names its subject (no 'this study', 'the authors', 'the passage');\n"
    "- use your own words: do not copy phrases from the passage;\n"
    "- each claim is supported by one sentence of the passage: give that sentence as the "
    "evidence, copied exactly;\n"
    "- no preamble, no numbering, no placeholders."
)
CLAIM_HEADER = (
    "Each passage is followed by sentences copied from it (Evidence) and, for each one, a short "
    "statement a user would search with that the sentence supports, in the user's own words (Claim).\n\n"
)
CLAIM_EXAMPLES = [
    "Holidays longer than two weeks need the manager's approval a month ahead.",
    "Up to five days of unused annual leave roll over into the following year.",
    "Pump controller fault E17 signals a broken inlet pressure sensor.",
    "The pump controller's event history can be copied to a USB drive.",
    "Visitors have to be accompanied by staff inside the workshop.",
    "Contractor passes stay valid for a year.",
]

KEYWORDS_SYSTEM_PROMPT = (
    "You write search queries for testing a document retrieval system. Each query must be a few "
    "keywords a real user could type into a search box to find the passage without having seen it."
)
KEYWORDS_INSTRUCTIONS = (
    "Write {n} different keyword queries for the passage below. Rules:\n"
    "- each query is 2 to 8 words, no full sentence and no question mark;\n"
    "- each query names its subject (no 'this study', 'the passage');\n"
    "- prefer the words a user would use over the passage's own phrasing;\n"
    "- each query is answered by one sentence of the passage: give that sentence as the "
    "evidence, copied exactly;\n"
    "- no preamble, no numbering, no placeholders."
)
KEYWORDS_HEADER = (
    "Each passage is followed by sentences copied from it (Evidence) and, for each one, the few "
    "keywords a user would type into a search box to find that sentence (Keywords).\n\n"
)
KEYWORDS_EXAMPLES = [
    "long holiday manager approval deadline",
    "carry over unused leave days",
    "pump fault E17 meaning",
    "export pump controller event log",
    "visitor escort workshop rule",
    "contractor pass validity",
]


@dataclass(frozen=True)
class StylePrompt:
    """Everything synth says to ask for one query style, in both prompt families."""

    style: str
    system: str
    instructions: str
    header: str
    label: str
    """The completion layout's label for the query line (``Question``, ``Claim``, ``Keywords``)."""
    examples: list[tuple[str, list[tuple[str, str]]]]


def _restyled(queries: list[str]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The question examples' passages and evidence with other queries, in order."""
    rest = iter(queries)
    return [(passage, [(next(rest), evidence) for _q, evidence in items]) for passage, items in FEW_SHOT_EXAMPLES]


STYLE_PROMPTS: dict[str, StylePrompt] = {
    "question": StylePrompt(
        "question", SYSTEM_PROMPT, QUESTION_INSTRUCTIONS, COMPLETION_HEADER, "Question", FEW_SHOT_EXAMPLES
    ),
    "claim": StylePrompt("claim", CLAIM_SYSTEM_PROMPT, CLAIM_INSTRUCTIONS, CLAIM_HEADER, "Claim", _restyled(CLAIM_EXAMPLES)),
    "keywords": StylePrompt(
        "keywords", KEYWORDS_SYSTEM_PROMPT, KEYWORDS_INSTRUCTIONS, KEYWORDS_HEADER, "Keywords",
        _restyled(KEYWORDS_EXAMPLES),
    ),
}  # fmt: skip


def style_prompt(style: str) -> StylePrompt:
    """The prompts of one query style; a ``ValueError`` names the styles there are."""
    try:
        return STYLE_PROMPTS[str(getattr(style, "value", style))]
    except KeyError:
        raise ValueError(f"unknown query style {style!r}: use one of {', '.join(STYLE_PROMPTS)}") from None


@functools.lru_cache(maxsize=1)
def example_queries() -> tuple[str, ...]:
    """Every query the few-shot prompts show as an example, all styles (the ``prompt_example`` list)."""
    return tuple(
        query for prompt in STYLE_PROMPTS.values() for _passage, items in prompt.examples for query, _evidence in items
    )
END_MARK = "<end>"
COMPLETION_STOP = [END_MARK, "<passage>", "</passage>", "\n\n\n"]
"""Stop sequences: a base model keeps writing new examples unless cut off."""

_QUERY_LABELS = {"question": ("question", "q"), "claim": ("claim",), "keywords": ("keywords", "keyword")}


@functools.lru_cache(maxsize=8)
def _label_pattern(style: str) -> tuple[re.Pattern[str], dict[str, str]]:
    """The line-label regex of one style's completion layout, and what each label means."""
    names = {"e": "evidence", "evidence": "evidence", **{label: "question" for label in _QUERY_LABELS[style]}}
    alternatives = "|".join(sorted(names, key=len, reverse=True))
    return re.compile(rf"^\s*(?:[-*\d.)\s]*)?({alternatives})\s*[:：]\s*(.*)$", re.IGNORECASE), names


def render_completion(items: Iterable[tuple[str, str]], label: str = "Question") -> str:
    """What a perfect base model writes after :func:`completion_prompt` ends.

    ``items`` are ``(query, evidence)`` pairs; the prompt ends with ``Evidence:``,
    so the text starts with the first evidence; ``label`` names the query line
    (:attr:`StylePrompt.label`). The scripted test server uses this to answer
    ``/v1/completions`` the way a well-behaved model would.
    """
    blocks = [f"Evidence: {evidence}\n{label}: {question}" for question, evidence in items]
    return "\n".join(blocks).removeprefix("Evidence:") + f"\n{END_MARK}\n"


def _example_block(passage: str, items: list[tuple[str, str]], label: str) -> str:
    return passage_block(passage) + "\nEvidence:" + render_completion(items, label) + "\n"


def completion_prompt(chunk_text: str, n_questions: int, style: str = "question") -> str:
    """A few-shot prompt for a base model; it ends right where the first evidence goes.

    ``n_questions`` is not stated (base models ignore instructions); the examples
    show two items each, and :func:`parse_completion` keeps what was written.
    """
    del n_questions  # the examples set the count for a base model
    prompt = style_prompt(style)
    shots = "".join(_example_block(passage, items, prompt.label) for passage, items in prompt.examples)
    return prompt.header + shots + passage_block(chunk_text) + "\nEvidence:"


def parse_completion(text: str, style: str = "question") -> dict[str, Any]:
    """Leniently turn a base model's continuation into ``{"questions": [...]}``.

    Labels may repeat, come in either order, carry bullets or numbers, or be
    abbreviated (``Q:``/``E:``); the query label is the ``style``'s (``Question``,
    ``Claim`` or ``Keywords``), and every style's items come back under
    ``question``. The text is read as if it began with
    ``Evidence:`` (where the prompt stopped). Items missing a field are dropped
    (usually the last one, cut off by ``max_tokens``); what remains is validated
    strictly by :class:`~domainfit.synth.schema.QuestionSet`.

    Example::

        parse_completion(" A is B.\\nQuestion: What is A?\\nEvidence: C is D.\\n")
        # {'questions': [{'question': 'What is A?', 'evidence': 'A is B.'}]}
    """
    label_line, label_names = _label_pattern(style_prompt(style).style)
    text = text.split(END_MARK, 1)[0]
    items: list[dict[str, str]] = []
    current: dict[str, str] = {}
    label: str | None = "evidence"
    for raw_line in ("Evidence:" + text).splitlines():
        match = label_line.match(raw_line)
        if match:
            label = label_names[match.group(1).lower()]
            if label in current:
                items.append(current)
                current = {}
            value = match.group(2).strip()
            # "Evidence: Evidence: ..." when a model repeats the label the prompt already gave
            nested = label_line.match(value)
            if nested and label_names[nested.group(1).lower()] == label:
                value = nested.group(2).strip()
            current[label] = value
        elif label is not None and raw_line.strip() and label in current:
            current[label] = f"{current[label]} {raw_line.strip()}".strip()
    items.append(current)
    complete = [
        {"question": item["question"], "evidence": item["evidence"]}
        for item in items
        if item.get("question") and item.get("evidence")
    ]
    return {"questions": complete}


# --------------------------------------------------------------------------- judge (synth.judge)

JUDGE_INSTRUCTIONS = (
    "Rate how good this question is as a search query for the passage, from 1 to 5: 5 = a clear, "
    "natural question that the passage fully answers; 3 = answerable but vague or awkward; 1 = not "
    "answered by the passage or not a real question."
)


def judge_messages(chunk_text: str, question: str) -> list[dict[str, Any]]:
    """Chat messages asking for a :class:`~domainfit.synth.schema.JudgeScore`."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": f"{JUDGE_INSTRUCTIONS}\n\n{passage_block(chunk_text)}\n\nQuestion: {question}",
        },
    ]


JUDGE_STOP = ["\n"]


def judge_completion_prompt(chunk_text: str, question: str) -> str:
    """A completion prompt ending in ``Score (1-5):`` for base models."""
    return f"{JUDGE_INSTRUCTIONS}\n\n{passage_block(chunk_text)}\nQuestion: {question}\nScore (1-5):"


def parse_judge_completion(text: str) -> dict[str, Any]:
    """``' 4 - clear'`` -> ``{"score": 4, "reason": "- clear"}``; no digit -> score 0 (invalid)."""
    match = re.search(r"[1-5]", text)
    if not match:
        return {"score": 0, "reason": text.strip()[:200]}
    return {"score": int(match.group(0)), "reason": text[match.end():].strip()[:200]}
