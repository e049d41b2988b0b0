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

The chunk always sits between ``<passage>`` tags (the scripted test server finds
it there).

Example::

    messages = chat_messages(chunk.text, 2)
    prompt = completion_prompt(chunk.text, 2)
    parse_completion(" Managers approve trips.\\nQuestion: Who approves trips?\\n")
"""

from __future__ import annotations

import re
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


def chat_messages(chunk_text: str, n_questions: int) -> list[dict[str, Any]]:
    """System + user messages asking an instruction-tuned model for ``n_questions`` questions."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": QUESTION_INSTRUCTIONS.format(n=n_questions) + "\n\n" + passage_block(chunk_text),
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

def example_queries() -> list[str]:
    """Every query the few-shot prompts show as an example (the ``prompt_example`` check's list)."""
    return [question for _passage, items in FEW_SHOT_EXAMPLES for question, _evidence in items]


COMPLETION_HEADER = (
    "Each passage is followed by sentences copied from it (Evidence) and, for each one, a question "
    "a user would ask that the sentence answers, in the user's own words (Question).\n\n"
)
END_MARK = "<end>"
COMPLETION_STOP = [END_MARK, "<passage>", "</passage>", "\n\n\n"]
"""Stop sequences: a base model keeps writing new examples unless cut off."""

_LABEL = re.compile(r"^\s*(?:[-*\d.)\s]*)?(evidence|question|q|e)\s*[:：]\s*(.*)$", re.IGNORECASE)
_LABEL_NAMES = {"e": "evidence", "evidence": "evidence", "q": "question", "question": "question"}


def render_completion(items: Iterable[tuple[str, str]]) -> str:
    """What a perfect base model writes after :func:`completion_prompt` ends.

    ``items`` are ``(question, evidence)`` pairs; the prompt ends with ``Evidence:``,
    so the text starts with the first evidence. The scripted test server uses this
    to answer ``/v1/completions`` the way a well-behaved model would.
    """
    blocks = [f"Evidence: {evidence}\nQuestion: {question}" for question, evidence in items]
    return "\n".join(blocks).removeprefix("Evidence:") + f"\n{END_MARK}\n"


def _example_block(passage: str, items: list[tuple[str, str]]) -> str:
    return passage_block(passage) + "\nEvidence:" + render_completion(items) + "\n"


def completion_prompt(chunk_text: str, n_questions: int) -> str:
    """A few-shot prompt for a base model; it ends right where the first evidence goes.

    ``n_questions`` is not stated (base models ignore instructions); the examples
    show two items each, and :func:`parse_completion` keeps what was written.
    """
    del n_questions  # the examples set the count for a base model
    shots = "".join(_example_block(passage, items) for passage, items in FEW_SHOT_EXAMPLES)
    return COMPLETION_HEADER + shots + passage_block(chunk_text) + "\nEvidence:"


def parse_completion(text: str) -> dict[str, Any]:
    """Leniently turn a base model's continuation into ``{"questions": [...]}``.

    Labels may repeat, come in either order, carry bullets or numbers, or be
    abbreviated (``Q:``/``E:``); the text is read as if it began with
    ``Evidence:`` (where the prompt stopped). Items missing a field are dropped
    (usually the last one, cut off by ``max_tokens``); what remains is validated
    strictly by :class:`~domainfit.synth.schema.QuestionSet`.

    Example::

        parse_completion(" A is B.\\nQuestion: What is A?\\nEvidence: C is D.\\n")
        # {'questions': [{'question': 'What is A?', 'evidence': 'A is B.'}]}
    """
    text = text.split(END_MARK, 1)[0]
    items: list[dict[str, str]] = []
    current: dict[str, str] = {}
    label: str | None = "evidence"
    for raw_line in ("Evidence:" + text).splitlines():
        match = _LABEL.match(raw_line)
        if match:
            label = _LABEL_NAMES[match.group(1).lower()]
            if label in current:
                items.append(current)
                current = {}
            value = match.group(2).strip()
            # "Evidence: Evidence: ..." when a model repeats the label the prompt already gave
            nested = _LABEL.match(value)
            if nested and _LABEL_NAMES[nested.group(1).lower()] == label:
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
