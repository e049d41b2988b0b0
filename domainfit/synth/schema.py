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

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

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


class GeneratedClaim(GeneratedQuestion):
    """One claim a user might search with, and the passage span that supports it."""

    model_config = ConfigDict(populate_by_name=True)

    question: str = Field(
        ...,
        alias="claim",
        description="A short statement a user would type into a search box; the passage must support it. "
        "Not a question. Do not copy the passage's wording.",
    )
    evidence: str = Field(
        ..., description="The sentence from the passage that supports the claim, copied exactly."
    )


class ClaimSet(QuestionSet):
    """The claims written for one chunk."""

    model_config = ConfigDict(populate_by_name=True)

    questions: list[GeneratedClaim] = Field(
        ..., alias="claims", description="Claims the passage supports, each with its evidence sentence."
    )


class GeneratedKeywords(GeneratedQuestion):
    """One keyword query a user might type, and the passage span that answers it."""

    model_config = ConfigDict(populate_by_name=True)

    question: str = Field(
        ...,
        alias="keywords",
        description="2 to 8 keywords a user would type into a search box to find the passage; not a sentence.",
    )


class KeywordSet(QuestionSet):
    """The keyword queries written for one chunk."""

    model_config = ConfigDict(populate_by_name=True)

    questions: list[GeneratedKeywords] = Field(
        ..., alias="queries", description="Keyword queries for the passage, each with its evidence sentence."
    )


_SET_BY_STYLE: dict[str, type[QuestionSet]] = {"question": QuestionSet, "claim": ClaimSet, "keywords": KeywordSet}


@functools.lru_cache(maxsize=32)
def question_set_model(questions_per_chunk: int, style: str = "question") -> type[QuestionSet]:
    """The answer model of a query ``style``, accepting 1 to ``2 * questions_per_chunk`` items.

    ``question``: :class:`QuestionSet` (same name and schema as before styles existed);
    ``claim``: :class:`ClaimSet` (``claims``/``claim`` in the schema); ``keywords``:
    :class:`KeywordSet` (``queries``/``keywords``). Each also accepts the
    ``questions``/``question`` names, and every item reads as ``item.question``.
    """
    base = _SET_BY_STYLE[style]
    return type(
        base.__name__,
        (base,),
        {"max_questions": 2 * questions_per_chunk, "__module__": __name__, "__doc__": base.__doc__},
    )


class JudgeScore(BaseModel):
    """An LLM judge's 1-5 rating of a question–passage pair (``synth.judge``)."""

    score: int = Field(..., ge=1, le=5, description="5 = a clear question the passage fully answers")
    reason: str = Field("", description="One short sentence explaining the score.")
