"""The pydantic models an LLM fills when it writes questions for a chunk.

Two kinds of checks guard an answer, and they live in different places on purpose:

* **Structure** (here): the answer is a list of 1 to ``2 * questions_per_chunk``
  items, each a non-empty ``question`` and a non-empty ``evidence`` span. A
  structural failure means the LLM did not follow the format, so the whole answer
  is useless and the fix is to ask again: with instructor's ``tools``/``json``
  modes it becomes a re-ask (capped by ``llm.max_reasks``), and the few-shot
  ``completion`` path validates its parsed text with the very same models.
* **Content** (``filters.py``, applied in one place in ``generate.py``): whether a
  question is grounded, not a copy of the chunk, well-formed and not a duplicate.
  These are judged per question after the answer is accepted, so one weak question
  does not throw away its good siblings, and each failing question becomes its own
  row in ``rejected.jsonl`` where a reviewer can rescue it.

The item bound is baked into a subclass per ``questions_per_chunk``
(:func:`question_set_model`) rather than passed as pydantic validation context,
because instructor also renders the messages as Jinja templates whenever a
context is given — and a chunk that contains ``{{`` would be mangled.

Example::

    model = question_set_model(2)                  # at most 4 items
    answer = model.model_validate(
        {"questions": [{"question": "Who approves travel?", "evidence": "Managers approve travel."}]}
    )
"""

from __future__ import annotations

import functools
from typing import ClassVar

from pydantic import BaseModel, Field, ValidationInfo, field_validator

MAX_QUESTION_CHARS = 1000
MAX_EVIDENCE_CHARS = 4000


class GeneratedQuestion(BaseModel):
    """One question a user might ask, and the passage span that answers it."""

    question: str = Field(
        ...,
        description="A question a user would type into a search box; the passage must answer it. "
        "Do not copy the passage's wording.",
    )
    evidence: str = Field(
        ...,
        description="The sentence from the passage that answers the question, copied exactly.",
    )

    @field_validator("question", "evidence")
    @classmethod
    def _non_empty(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        if not value:
            raise ValueError(f"{info.field_name} must not be empty")
        limit = MAX_QUESTION_CHARS if info.field_name == "question" else MAX_EVIDENCE_CHARS
        if len(value) > limit:
            raise ValueError(f"{info.field_name} is longer than {limit} characters")
        return value


class QuestionSet(BaseModel):
    """The questions written for one chunk."""

    max_questions: ClassVar[int | None] = None

    questions: list[GeneratedQuestion] = Field(
        ..., description="Questions about the passage, each with its evidence sentence."
    )

    @field_validator("questions")
    @classmethod
    def _count(cls, value: list[GeneratedQuestion]) -> list[GeneratedQuestion]:
        if not value:
            raise ValueError("write at least one question")
        if cls.max_questions is not None and len(value) > cls.max_questions:
            raise ValueError(f"write at most {cls.max_questions} questions, got {len(value)}")
        return value


@functools.lru_cache(maxsize=32)
def question_set_model(questions_per_chunk: int) -> type[QuestionSet]:
    """A :class:`QuestionSet` accepting 1 to ``2 * questions_per_chunk`` items (same name and schema)."""
    return type(
        "QuestionSet",
        (QuestionSet,),
        {"max_questions": 2 * questions_per_chunk, "__module__": __name__, "__doc__": QuestionSet.__doc__},
    )


class JudgeScore(BaseModel):
    """An LLM judge's 1-5 rating of a question–passage pair (``synth.judge``)."""

    score: int = Field(..., ge=1, le=5, description="5 = a clear question the passage fully answers")
    reason: str = Field("", description="One short sentence explaining the score.")
