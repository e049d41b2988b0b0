"""The one place that talks HTTP to the question-writing LLM.

:class:`LLMClient` wraps ``openai.AsyncOpenAI`` (any OpenAI-compatible endpoint)
and turns a chunk into a validated :class:`~domainfit.synth.schema.QuestionSet`:

* ``tools`` / ``json`` (instruction-tuned models): instructor's request, parser
  and reask handlers fill the schema, re-asking up to ``llm.max_reasks`` times when
  the answer fails validation. The re-ask loop is ours rather than
  ``instructor.patch``'s, because every HTTP attempt has to pass through
  ``retry.call_with_retries`` (the openai client's own retries are off) and have its
  token usage counted as it happens — retries and re-asks included — and because
  the patched ``create`` redoes its setup on every call (see :class:`_StructuredPlan`).
* ``completion`` (base models such as the offline Gemma 3 270M): a few-shot prompt
  to ``/v1/completions``; the text is parsed leniently and validated by the same
  pydantic model, a failure being re-sampled like a re-ask.

Every answer comes back as an :class:`LLMAnswer`: the questions, the raw text, the
usage of this chunk's attempts, or the reason it failed (``invalid_output``,
``truncated_output``, ``llm_error: ...``). Only errors no chunk can survive (bad
key, unknown model) raise :class:`~domainfit.errors.LLMError`.

Example::

    endpoint = Endpoint.remote(cfg.llm, url, "gpt-4o-mini")
    async with LLMClient(endpoint, cfg.llm, questions_per_chunk=2) as client:
        answer = await client.write_questions(chunk.text)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import openai
from pydantic import BaseModel, ValidationError

from ..config import LLMConfig, PromptStyle
from ..errors import ConfigError, DomainfitError, LLMError, first_line, first_validation_error
from . import prompts
from .retry import LLMRequestFailed, MinuteLimiter, RetryPolicy, call_with_retries, describe_error
from .schema import GeneratedQuestion, JudgeScore, QuestionSet, question_set_model

# instructor logs every failed attempt at ERROR; with no logging configured Python
# would print them all on stderr. Our own reject rows and summary say it better.
logging.getLogger("instructor").addHandler(logging.NullHandler())

NO_KEY = "not-needed"
"""Sent as the API key to endpoints that need none (vLLM, Ollama, llama.cpp)."""

CHARS_PER_TOKEN = 4
"""Rough prompt size estimate for the client-side tokens-per-minute limiter."""


_USAGE_FIELDS = ("requests", "retries", "reasks", "prompt_tokens", "completion_tokens")


@dataclass
class Usage:
    """What talking to the LLM cost: HTTP attempts, retries, re-asks and tokens."""

    requests: int = 0
    retries: int = 0
    reasks: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: "Usage") -> None:
        for name in _USAGE_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def copy(self) -> "Usage":
        return Usage(**{name: getattr(self, name) for name in _USAGE_FIELDS})

    def minus(self, earlier: "Usage") -> "Usage":
        """The usage since ``earlier`` (a copy taken before)."""
        return Usage(**{name: getattr(self, name) - getattr(earlier, name) for name in _USAGE_FIELDS})

    def count_response(self, response: Any) -> None:
        usage = getattr(response, "usage", None)
        if usage is not None:
            self.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
            self.completion_tokens += int(getattr(usage, "completion_tokens", 0) or 0)

    def cost_usd(self, config: LLMConfig) -> float | None:
        """Estimated cost from ``llm.price_per_1k_input/output``; None when no price is set."""
        if config.price_per_1k_input is None and config.price_per_1k_output is None:
            return None
        cost = self.prompt_tokens / 1000 * (config.price_per_1k_input or 0.0)
        cost += self.completion_tokens / 1000 * (config.price_per_1k_output or 0.0)
        return round(cost, 6)

    def counts(self) -> dict[str, int]:
        return {**asdict(self), "total_tokens": self.total_tokens}


@dataclass
class LLMAnswer:
    """The outcome of asking for one chunk's questions."""

    questions: list[GeneratedQuestion] = field(default_factory=list)
    raw: str = ""
    usage: Usage = field(default_factory=Usage)
    failure: str | None = None
    refused: bool = False
    """The endpoint refused the connection on every attempt (nothing listens there)."""


def resolve_style(config: LLMConfig) -> PromptStyle:
    """``auto`` -> ``completion`` for the offline base model, ``tools`` for an endpoint."""
    style = PromptStyle(config.prompt_style)
    if style is PromptStyle.auto:
        return PromptStyle.completion if config.is_local else PromptStyle.tools
    return style


def make_openai_client(base_url: str, config: LLMConfig, timeout_s: float | None = None) -> openai.AsyncOpenAI:
    """An async openai client with retries off (``retry.py`` owns them) and the configured timeout."""
    key = config.api_key.get_secret_value() if config.api_key is not None else NO_KEY
    timeout = config.timeout_s if timeout_s is None else timeout_s
    return openai.AsyncOpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=0)


async def list_models(base_url: str, config: LLMConfig) -> list[str]:
    """Model ids the endpoint serves (``GET /models``); [] if it does not say."""
    client = make_openai_client(base_url, config)
    try:
        page = await client.models.list()
        return [model.id for model in page.data]
    except openai.APIConnectionError as error:
        raise LLMError(f"cannot reach the LLM at {base_url}: {describe_error(error)}") from None
    except openai.APIError:
        return []
    finally:
        await client.close()


LOCAL_TEMPERATURE = 0.2
"""Sampling temperature for the offline base model unless llm.temperature is set explicitly."""

LOCAL_MAX_TOKENS = 200
"""Completion cap for the offline base model unless llm.max_tokens is set: two items fit, rambling does not."""

LOCAL_TIMEOUT_S = 600.0
"""Per-request timeout for the offline model unless llm.timeout_s is set: a busy CPU is slow, not dead."""

LOCAL_CONCURRENCY = 1
"""llama_cpp.server answers one request at a time; more in flight would only queue into timeouts."""


@dataclass
class Endpoint:
    """Where questions come from: the URL, the model name and how to prompt it.

    The sampling settings here are the ones in effect: the offline model has its own
    defaults for what the config leaves unset (see :func:`open_endpoint`).
    """

    base_url: str
    model: str
    style: PromptStyle
    temperature: float
    max_concurrency: int
    max_tokens: int
    timeout_s: float
    local: bool = False

    @classmethod
    def remote(cls, config: LLMConfig, base_url: str, model: str) -> "Endpoint":
        """An endpoint at ``base_url`` serving ``model``, with the config's settings as they are."""
        return cls(
            base_url, model, resolve_style(config), config.temperature, config.max_concurrency, config.max_tokens,
            config.timeout_s,
        )

    @property
    def label(self) -> str:
        where = "local llama.cpp server" if self.local else self.base_url
        return f"{self.model} ({self.style.value}) at {where}"


@contextlib.contextmanager
def open_endpoint(config: LLMConfig) -> Iterator[Endpoint]:
    """The configured endpoint, or the offline default started for the duration of the block.

    With ``llm.base_url`` unset this starts the local llama.cpp server (see
    ``local_server.py``) and stops it on exit, error or Ctrl-C. With a URL but no
    ``llm.model``, a single model listed by the endpoint is used; otherwise the
    error names the models on offer.
    """
    if not config.is_local:
        assert config.base_url is not None
        yield Endpoint.remote(config, config.base_url, config.model or _only_model(config.base_url, config))
        return
    from .local_server import LocalLLMServer, packaged_gguf

    path = Path(config.local_model_path) if config.local_model_path else packaged_gguf()
    explicit = config.model_fields_set
    temperature = config.temperature if "temperature" in explicit else LOCAL_TEMPERATURE
    max_tokens = config.max_tokens if "max_tokens" in explicit else LOCAL_MAX_TOKENS
    timeout_s = config.timeout_s if "timeout_s" in explicit else LOCAL_TIMEOUT_S
    with LocalLLMServer(
        path,
        context=config.local_context,
        threads=config.local_threads,
        startup_timeout_s=config.local_startup_timeout_s,
    ) as server:
        yield Endpoint(
            server.base_url,
            server.model,
            resolve_style(config),
            temperature,
            min(config.max_concurrency, LOCAL_CONCURRENCY),
            max_tokens,
            timeout_s,
            local=True,
        )


def _only_model(base_url: str, config: LLMConfig) -> str:
    models = asyncio.run(list_models(base_url, config))
    if len(models) == 1:
        return models[0]
    offered = f" (it serves: {', '.join(models[:10])})" if models else ""
    raise ConfigError(f"llm.model is not set: pass --llm-model for {base_url}{offered}")


@functools.lru_cache(maxsize=32)
def instructor_model(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` wrapped once as instructor's ResponseSchema, so its tool schema is built once.

    instructor wraps a plain pydantic model in a fresh class on every call, which
    regenerates the JSON schema each time; a pre-wrapped class hits its cache.
    """
    import instructor

    wrap = getattr(instructor, "response_schema", None) or instructor.openai_schema
    return wrap(model)


@dataclass(frozen=True)
class _StructuredPlan:
    """instructor's preparation of one response model for one mode, done once per run.

    instructor's patched ``create`` re-walks the model (``reject_async_validators``
    three times, ``prepare_response_model`` twice) and rebuilds the request on every
    call: about 1 ms of CPU per request, more than the rest of the client. The
    schema, the handlers and, in tools mode, the tool parameters do not change
    between calls, so they are made here once; every attempt still goes through
    instructor's own request handler (json mode), response parser and reask handler.
    """

    model: type[BaseModel]
    """The response model as instructor prepared it (its ResponseSchema wrapper)."""
    handlers: Any
    tool_params: dict[str, Any] | None
    """``tools`` / ``tool_choice`` in tools mode (they do not depend on the messages); None otherwise."""

    def request(self, messages: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
        """The request body for ``messages``, exactly as instructor would send it."""
        if self.tool_params is not None:
            return {"messages": list(messages), **params, **self.tool_params}
        _, request = self.handlers.request_handler(response_model=self.model, kwargs={"messages": messages, **params})
        return request


@functools.lru_cache(maxsize=32)
def _structured_plan(model: type[BaseModel], mode: Any) -> _StructuredPlan:
    import instructor
    from instructor.v2.core.providers import Provider
    from instructor.v2.core.registry import mode_registry
    from instructor.v2.core.response_model import prepare_response_model

    prepared = prepare_response_model(instructor_model(model))
    handlers = mode_registry.get_handlers(Provider.OPENAI, mode)
    tool_params = None
    if mode is instructor.Mode.TOOLS:
        _, request = handlers.request_handler(response_model=prepared, kwargs={"messages": []})
        tool_params = {"tools": request["tools"], "tool_choice": request["tool_choice"]}
    return _StructuredPlan(prepared, handlers, tool_params)


def chat_text(response: Any) -> str:
    """The answer text of a chat completion: tool-call arguments, else the message content."""
    try:
        message = response.choices[0].message
    except (AttributeError, IndexError, TypeError):
        return ""
    calls = getattr(message, "tool_calls", None) or []
    if calls:
        return str(calls[0].function.arguments or "")
    return message.content or ""


def completion_text(response: Any) -> str:
    """The text of a completion's first choice ('' when it has none)."""
    try:
        return response.choices[0].text or ""
    except (AttributeError, IndexError, TypeError):
        return ""


async def _within(seconds: float, request: Awaitable[Any], url: str) -> Any:
    """``request``, or openai's timeout error once ``seconds`` have passed in all.

    httpx's timeout bounds each read, so a server that drips one byte at a time
    would hold a request forever; this makes ``llm.timeout_s`` a deadline for the
    whole request, retried like any other timeout.
    """
    try:
        return await asyncio.wait_for(request, seconds)
    except asyncio.TimeoutError:
        import httpx

        raise openai.APITimeoutError(request=httpx.Request("POST", url)) from None


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` (the API key) replaced by ``[REDACTED]``."""
    if not secret or secret not in text:
        return text
    return text.replace(secret, "[REDACTED]")


def _domain_error(error: BaseException) -> DomainfitError | None:
    """Our own error somewhere in an exception's cause chain (instructor wraps what create raises)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, DomainfitError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def invalid_detail(error: BaseException) -> str:
    """What was wrong with an answer, in one line: the first validation error, or 'not JSON'."""
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, ValidationError):
            where, problem = first_validation_error(current)
            return f"{where or 'answer'}: {problem['msg']}"[:300]
        if isinstance(current, json.JSONDecodeError):
            return "not valid JSON"
        current = current.__cause__
    return first_line(error, 300)


_BEARER_AUTH: Any = {"security": {"bearer_auth": True}}
"""Request options that make ``AsyncOpenAI.post`` send the API key, as its typed ``create`` does."""


class LLMClient:
    """Asks one OpenAI-compatible endpoint for questions (and, optionally, judge scores).

    Concurrency: at most ``llm.max_concurrency`` HTTP requests are in flight
    (an ``asyncio.Semaphore``; backoff sleeps do not hold a slot), paced by the
    optional requests/tokens-per-minute limiters. ``usage`` totals every attempt.
    """

    def __init__(self, endpoint: Endpoint, config: LLMConfig, *, questions_per_chunk: int, seed: int | None = None):
        """``endpoint`` says where and how to sample; ``config`` how to retry, pace and re-ask.

        ``seed`` makes the completion style's samples repeatable (the offline model).
        """
        if endpoint.style is PromptStyle.auto:
            raise ValueError("resolve the prompt style first (resolve_style)")
        self.endpoint = endpoint
        self.config = config
        self.questions_per_chunk = questions_per_chunk
        self.seed = seed
        self.policy = RetryPolicy(config.max_retries, config.retry_initial_delay_s, config.retry_max_delay_s)
        self.usage = Usage()
        self.failures: collections.Counter[str] = collections.Counter()
        """Failed HTTP attempts by cause (``HTTP 503``, ``timeout``, ...), retries included."""
        self.ever_answered = False
        self._secret = config.api_key.get_secret_value() if config.api_key is not None else None
        self._client = make_openai_client(endpoint.base_url, config, endpoint.timeout_s)
        self._semaphore = asyncio.Semaphore(endpoint.max_concurrency)
        self._rpm = MinuteLimiter(config.requests_per_minute) if config.requests_per_minute else None
        self._tpm = MinuteLimiter(config.tokens_per_minute) if config.tokens_per_minute else None

    async def __aenter__(self) -> "LLMClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.close()

    # ------------------------------------------------------------------ HTTP

    async def _send(self, call: Callable[[], Awaitable[Any]], usage: Usage, prompt_chars: int) -> Any:
        """One logical request: paced, bounded, retried, and counted per attempt."""
        estimate = prompt_chars / CHARS_PER_TOKEN + self.endpoint.max_tokens

        async def attempt() -> Any:
            if self._rpm is not None:
                await self._rpm.acquire(1)
            if self._tpm is not None:
                await self._tpm.acquire(estimate)
            async with self._semaphore:
                try:
                    response = await _within(self.endpoint.timeout_s, call(), self.endpoint.base_url)
                except openai.APIStatusError as error:
                    self.ever_answered = True
                    self.failures[describe_error(error)] += 1
                    raise
                except openai.APIError as error:
                    self.failures[describe_error(error)] += 1
                    raise
            self.ever_answered = True
            usage.count_response(response)
            self.usage.count_response(response)
            return response

        def on_attempt() -> None:
            usage.requests += 1
            self.usage.requests += 1

        def on_retry(error: BaseException, delay: float) -> None:
            usage.retries += 1
            self.usage.retries += 1

        return await call_with_retries(
            attempt,
            self.policy,
            url=self.endpoint.base_url,
            retry_refused=self.ever_answered,
            on_attempt=on_attempt,
            on_retry=on_retry,
        )

    def _note_reask(self, usage: Usage) -> None:
        usage.reasks += 1
        self.usage.reasks += 1

    # ------------------------------------------------------------------ structured output

    async def _structured(
        self,
        response_model: type[BaseModel],
        messages: list[dict[str, Any]],
        usage: Usage,
        last_raw: list[str],
    ) -> BaseModel:
        """instructor's structured output over our retrying, counting send; raises what instructor raises.

        The loop is instructor's (``retry_async_v2``) without its per-call setup:
        each attempt is parsed by instructor's response parser for the mode; a
        parse or validation failure is re-asked with instructor's reask messages,
        up to ``llm.max_reasks`` times; then ``InstructorRetryException`` from the
        last error, as instructor raises it (a truncated answer raises
        ``IncompleteOutputException`` at once). No validation ``context`` is
        passed: instructor would render the messages as Jinja templates with it,
        and chunk text may contain ``{{``.
        """
        import instructor
        from instructor.core import (
            AsyncValidationError,
            IncompleteOutputException,
            InstructorRetryException,
            ResponseParsingError,
        )
        from openai.types.chat import ChatCompletion

        mode = instructor.Mode.TOOLS if self.endpoint.style is PromptStyle.tools else instructor.Mode.JSON
        plan = _structured_plan(response_model, mode)
        request = plan.request(
            messages, model=self.endpoint.model, temperature=self.endpoint.temperature, max_tokens=self.endpoint.max_tokens
        )
        retryable = (ValidationError, json.JSONDecodeError, AsyncValidationError, ResponseParsingError)
        attempts = 0
        try:
            while True:
                attempts += 1
                if attempts > 1:
                    self._note_reask(usage)
                chars = sum(len(str(message.get("content") or "")) for message in request["messages"])
                # the body is plain JSON already: posted as it is, it skips the openai
                # client's walk of it against the typed params (as costly as instructor's setup)
                response = await self._send(
                    lambda: self._client.post(
                        "/chat/completions", body=request, cast_to=ChatCompletion, options=_BEARER_AUTH
                    ),
                    usage,
                    chars,
                )
                last_raw.append(chat_text(response))
                try:
                    return plan.handlers.response_parser(
                        response=response, response_model=plan.model, validation_context=None, strict=True,
                        stream=False, is_async=True,
                    )  # fmt: skip
                except retryable as error:
                    if attempts > self.config.max_reasks:
                        raise InstructorRetryException(
                            str(error), last_completion=response, n_attempts=attempts, total_usage=None,
                            messages=request["messages"], create_kwargs=request,
                        ) from error  # fmt: skip
                    request = plan.handlers.reask_handler(kwargs=request, response=response, exception=error)
        except (IncompleteOutputException, InstructorRetryException):
            raise
        except Exception as error:  # instructor wraps whatever else an attempt raises
            raise InstructorRetryException(
                str(error), n_attempts=attempts, total_usage=None, messages=request["messages"], create_kwargs=request
            ) from error

    async def _completion(
        self,
        response_model: type[BaseModel],
        prompt: str,
        parse: Callable[[str], dict[str, Any]],
        usage: Usage,
        last_raw: list[str],
        *,
        stop: list[str],
        max_tokens: int,
    ) -> BaseModel:
        """Few-shot completion, parsed and validated like instructor would; invalid -> re-sample."""
        error: ValidationError | None = None
        for attempt in range(self.config.max_reasks + 1):
            if attempt:
                self._note_reask(usage)
            seed = None if self.seed is None else self.seed + attempt  # a re-ask must be a new sample
            response = await self._send(
                lambda: self._client.completions.create(
                    model=self.endpoint.model,
                    prompt=prompt,
                    max_tokens=max_tokens,
                    temperature=self.endpoint.temperature,
                    stop=stop,
                    **({} if seed is None else {"seed": seed}),
                ),
                usage,
                len(prompt),
            )
            text = completion_text(response)
            last_raw.append(text)
            try:
                return response_model.model_validate(parse(text))
            except ValidationError as invalid:
                error = invalid
        assert error is not None
        raise error

    # ------------------------------------------------------------------ public

    async def write_questions(self, chunk_text: str, query_style: str = "question") -> LLMAnswer:
        """Queries of ``query_style`` with evidence for one chunk; failures come back as ``LLMAnswer.failure``.

        Every style's items come back as :class:`GeneratedQuestion` (``item.question``
        holds the claim or keywords).
        """
        usage = Usage()
        raw: list[str] = []
        query_style = str(getattr(query_style, "value", query_style))
        model = question_set_model(self.questions_per_chunk, query_style)
        try:
            if self.endpoint.style is PromptStyle.completion:
                result = await self._completion(
                    model,
                    prompts.completion_prompt(chunk_text, self.questions_per_chunk, query_style),
                    functools.partial(prompts.parse_completion, style=query_style),
                    usage,
                    raw,
                    stop=prompts.COMPLETION_STOP,
                    max_tokens=self.endpoint.max_tokens,
                )
            else:
                result = await self._structured(
                    model, prompts.chat_messages(chunk_text, self.questions_per_chunk, query_style), usage, raw
                )
        except Exception as error:  # noqa: BLE001 - sorted into reject reasons below
            return self._redacted(self._failed(error, usage, raw[-1] if raw else ""))
        assert isinstance(result, QuestionSet)
        return self._redacted(LLMAnswer(questions=list(result.questions), raw=raw[-1] if raw else "", usage=usage))

    def _redacted(self, answer: LLMAnswer) -> LLMAnswer:
        """The answer with the API key taken out of everything that gets written (raw, questions, reason)."""
        if not self._secret:
            return answer
        answer.raw = redact(answer.raw, self._secret)
        answer.failure = None if answer.failure is None else redact(answer.failure, self._secret)
        answer.questions = [
            item.model_copy(update={"question": redact(item.question, self._secret), "evidence": redact(item.evidence, self._secret)})
            for item in answer.questions
        ]
        return answer

    async def judge(self, chunk_text: str, question: str) -> tuple[JudgeScore | None, Usage]:
        """A 1-5 score for a question–chunk pair (``synth.judge``); None if no valid score came back."""
        usage = Usage()
        raw: list[str] = []
        try:
            if self.endpoint.style is PromptStyle.completion:
                result = await self._completion(
                    JudgeScore,
                    prompts.judge_completion_prompt(chunk_text, question),
                    prompts.parse_judge_completion,
                    usage,
                    raw,
                    stop=prompts.JUDGE_STOP,
                    max_tokens=32,
                )
            else:
                result = await self._structured(
                    JudgeScore, prompts.judge_messages(chunk_text, question), usage, raw
                )
        except Exception as error:  # noqa: BLE001
            self._failed(error, usage, "")
            return None, usage
        assert isinstance(result, JudgeScore)
        return result, usage

    def _failed(self, error: BaseException, usage: Usage, raw: str) -> LLMAnswer:
        """Sort an exception into a reject reason; errors no chunk can survive are re-raised."""
        domain = _domain_error(error)
        if isinstance(domain, LLMRequestFailed):
            return LLMAnswer(raw=raw, usage=usage, failure=f"llm_error: {domain}", refused=domain.refused)
        if domain is not None:
            raise domain
        from instructor.core import IncompleteOutputException, InstructorError

        if isinstance(error, IncompleteOutputException):
            return LLMAnswer(raw=raw, usage=usage, failure="truncated_output")
        if isinstance(error, (ValidationError, InstructorError)):
            return LLMAnswer(raw=raw, usage=usage, failure=f"invalid_output: {invalid_detail(error)}")
        raise error


def answer_json(question: GeneratedQuestion) -> str:
    """One question as the JSON a reject row keeps in ``raw``."""
    return json.dumps(question.model_dump(), ensure_ascii=False)
