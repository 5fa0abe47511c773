"""``JudgeClient``: JSON-schema calls through litellm with our own retries, store and budget.

litellm is imported on first use (it costs seconds and hundreds of MB), with
``LITELLM_OFFLINE_MODE=true`` so that it never downloads its price map.
litellm's own retries (``max_retries=0``) and cache are off: this client
retries, stores and accounts for every call itself.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from atlas_builder.diagnose.judge.prompts import AnswerRejected, validate_schema
from atlas_builder.diagnose.judge.store import (
    MAX_INVALID_ANSWER_CHARS,
    JudgeStore,
    record_settles,
    request_key,
    utc_now,
)

logger = logging.getLogger(__name__)

#: Maximum wait, in seconds, that this client honours from a ``Retry-After`` header.
MAX_RETRY_AFTER_S = 300.0
#: Output tokens assumed per call for the budget reservation until calls have been seen.
DEFAULT_OUTPUT_TOKENS_ESTIMATE = 600


def import_litellm() -> Any:
    """Import litellm offline and quiet; repeated calls return the loaded module."""
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    import litellm

    litellm.suppress_debug_info = True  # no "Give Feedback" banners on stdout
    return litellm


def litellm_price(model: str) -> tuple[float, float] | None:
    """Return litellm's (input, output) price in USD per million tokens for ``model``, or None if unknown."""
    litellm = import_litellm()
    try:
        price_in, price_out = litellm.cost_per_token(model=model, prompt_tokens=1_000_000, completion_tokens=1_000_000)
    except Exception:  # litellm raises several types (NotFoundError, ModelNotMappedError, ...) for unknown models
        return None
    return float(price_in), float(price_out)


class BudgetExceeded(RuntimeError):
    """Raised by ``complete_json`` before a call that would pass a budget; nothing is sent or stored.

    ``scope`` is ``"run"`` for ``budget_usd`` and ``"total"`` for ``total_budget_usd``.
    """

    def __init__(self, message: str, scope: str):
        super().__init__(message)
        self.scope = scope


class JudgeConfigError(RuntimeError):
    """Raised when the judge rejects the set-up itself (bad key, unknown model); a run must stop."""


@dataclass
class JudgeAnswer:
    """The outcome of one request: the validated answer or the failure reason, with accounting."""

    key: str
    ok: bool
    data: dict[str, Any] | None  # parsed and validated answer when ok
    error: str | None  # why the request failed, when not ok
    error_kind: str | None  # "transient", "answer" or "request" when not ok
    cached: bool  # True when read from the store without a call
    tokens_in: int
    tokens_out: int
    cost_usd: float | None  # None when the price is unknown
    latency_s: float
    attempts: int
    record: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_record(cls, record: dict[str, Any], cached: bool) -> "JudgeAnswer":
        return cls(
            key=record["key"],
            ok=bool(record["ok"]),
            data=record.get("answer"),
            error=record.get("error"),
            error_kind=record.get("error_kind"),
            cached=cached,
            tokens_in=int(record.get("tokens_in") or 0),
            tokens_out=int(record.get("tokens_out") or 0),
            cost_usd=record.get("cost_usd"),
            latency_s=float(record.get("latency_s") or 0.0),
            attempts=int(record.get("attempts") or 0),
            record=record,
        )


def _retry_after_seconds(error: BaseException) -> float | None:
    """Read ``Retry-After`` (seconds or an HTTP date) from a litellm exception, if present."""
    headers = getattr(error, "litellm_response_headers", None)
    if headers is None:
        response = getattr(error, "response", None)
        headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            logger.debug("ignoring an invalid Retry-After header %r", value)
            return None
        seconds = parsed.timestamp() - time.time()
    return max(0.0, min(seconds, MAX_RETRY_AFTER_S))


@dataclass
class ClientStats:
    """Running totals of one client, for progress bars and summaries."""

    requests: int = 0  # HTTP requests sent, retries included
    answered: int = 0  # requests that ended with a valid answer (not from the store)
    failed: int = 0  # requests recorded as judge failures
    cached: int = 0  # requests served from the store
    tokens_in: int = 0
    tokens_out: int = 0
    spent_usd: float = 0.0  # cost of calls with a known price
    unpriced_calls: int = 0  # calls whose cost is unknown


class JudgeClient:
    """Send JSON-schema requests to one judge model through litellm.

    Every finished request is appended to ``store`` and a request whose key is
    stored with an answer is never sent again. Failures are stored too; a
    later client retries those whose cause was transient (rate limit, timeout,
    connection, server error) and, with ``retry_failed``, all of them.

    ``max_concurrency`` bounds the requests in flight across all callers of
    this client. ``budget_usd`` stops new requests once the cost spent plus the
    estimated cost of the requests in flight would pass it. ``total_budget_usd``
    does the same after adding the cost of every record of this judge model
    that the store held when the client was created. A budget needs a
    price, from litellm or from ``price_in``/``price_out`` (USD per million tokens).
    """

    def __init__(
        self,
        model: str,
        store: JudgeStore,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        max_concurrency: int = 8,
        timeout: float = 120.0,
        max_attempts: int = 4,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        budget_usd: float | None = None,
        total_budget_usd: float | None = None,
        price_in: float | None = None,
        price_out: float | None = None,
        max_output_tokens: int = 4096,
        temperature: float | None = 0.0,
        retry_failed: bool = False,
        extra_params: dict[str, Any] | None = None,
    ):
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if (price_in is None) != (price_out is None):
            raise ValueError("give both price_in and price_out, or neither")
        self.model = model
        self.store = store
        self.api_base = api_base
        self.api_key = api_key
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.budget_usd = budget_usd
        self.total_budget_usd = total_budget_usd
        # Cost recorded by earlier runs of this judge model; this client's own calls add to stats.spent_usd.
        self.recorded_usd = store.recorded_cost(model) if total_budget_usd is not None else 0.0
        self.max_output_tokens = max_output_tokens
        self.temperature = temperature
        self.retry_failed = retry_failed
        self.extra_params = dict(extra_params or {})
        self.stats = ClientStats()
        self._semaphore: asyncio.Semaphore | None = None
        self._semaphore_loop: asyncio.AbstractEventLoop | None = None
        self._reserved_usd = 0.0
        # Imported here, not on the first call, so the import does not stall the event loop and progress bar.
        self._litellm: Any = import_litellm()
        self._sync_task: asyncio.Task | None = None
        if price_in is not None and price_out is not None:
            self.price: tuple[float, float] | None = (float(price_in), float(price_out))
            self.price_source = "override"
        else:
            self.price = litellm_price(model)
            self.price_source = "litellm" if self.price is not None else "unknown"
        budget = budget_usd if budget_usd is not None else total_budget_usd
        if budget is not None and self.price is None:
            raise JudgeConfigError(
                f"litellm has no price for {model!r}, so a budget of {budget} USD cannot be enforced; "
                "pass price_in and price_out (USD per million tokens)"
            )

    # --- keys and the store -------------------------------------------------

    def key(self, *, prompt_version: str, messages: list[dict[str, Any]], schema: dict[str, Any]) -> str:
        """Return the store key of a request to this client's judge model."""
        return request_key(messages, self.model, prompt_version, schema)

    def is_done(self, record: dict[str, Any] | None) -> bool:
        """Tell whether a stored record settles its request (see ``store.record_settles``)."""
        return record_settles(record, self.retry_failed)

    def cost(self, tokens_in: int, tokens_out: int) -> float | None:
        """Return the cost in USD of a call, or None when the price is unknown."""
        if self.price is None:
            return None
        return (tokens_in * self.price[0] + tokens_out * self.price[1]) / 1_000_000

    def _estimate_cost(self, messages: list[dict[str, Any]]) -> float:
        if self.price is None:
            return 0.0
        tokens_in = sum(len(str(message.get("content", ""))) for message in messages) // 4
        seen = self.stats.answered + self.stats.failed
        tokens_out = self.stats.tokens_out / seen if seen else DEFAULT_OUTPUT_TOKENS_ESTIMATE
        return self.cost(tokens_in, int(tokens_out)) or 0.0

    @property
    def budget_left(self) -> float | None:
        """USD left of the budget after spent and reserved cost, or None without a budget."""
        if self.budget_usd is None:
            return None
        return self.budget_usd - self.stats.spent_usd - self._reserved_usd

    # --- calls ----------------------------------------------------------------

    async def complete_json(
        self,
        *,
        purpose: str,
        prompt_version: str,
        messages: list[dict[str, Any]],
        schema: dict[str, Any],
        schema_name: str,
        subject: dict[str, str] | None = None,
        request: dict[str, Any] | None = None,
        check: Callable[[Any], None] | None = None,
        core_key: str | None = None,
    ) -> JudgeAnswer:
        """Return the judge's schema-valid JSON answer to ``messages``, from the store or by calling it.

        ``check`` may raise ``AnswerRejected`` for rules the schema cannot
        state; a rejected answer is retried like a malformed one. ``subject``,
        ``request`` and ``core_key`` are stored with the record (see ``store``);
        this method looks the request up by its exact key only. Raises
        ``BudgetExceeded`` before a call that would pass the budget and
        ``JudgeConfigError`` when the judge rejects the credentials or model.
        """
        key = self.key(prompt_version=prompt_version, messages=messages, schema=schema)
        stored = self.store.get(key)
        if self.is_done(stored):
            self.stats.cached += 1
            return JudgeAnswer.from_record(stored, cached=True)

        estimate = self._estimate_cost(messages)
        committed = self.stats.spent_usd + self._reserved_usd + estimate
        if self.budget_usd is not None and committed > self.budget_usd:
            raise BudgetExceeded(
                f"budget of {self.budget_usd:.4f} USD reached: spent {self.stats.spent_usd:.4f}, "
                f"in flight {self._reserved_usd:.4f}, next call about {estimate:.4f}", "run"
            )
        if self.total_budget_usd is not None and self.recorded_usd + committed > self.total_budget_usd:
            raise BudgetExceeded(
                f"total budget of {self.total_budget_usd:.4f} USD for {self.model} reached: "
                f"{self.recorded_usd:.4f} recorded by earlier runs, spent {self.stats.spent_usd:.4f} in this run, "
                f"in flight {self._reserved_usd:.4f}, next call about {estimate:.4f}", "total"
            )
        self._reserved_usd += estimate
        try:
            loop = asyncio.get_running_loop()
            if self._semaphore is None or self._semaphore_loop is not loop:
                # A semaphore belongs to one event loop; a client reused under a new asyncio.run gets a new one.
                self._semaphore, self._semaphore_loop = asyncio.Semaphore(self.max_concurrency), loop
            async with self._semaphore:
                outcome = await self._call_with_retries(messages, schema, schema_name, check)
        finally:
            self._reserved_usd -= estimate

        record = {
            "key": key,
            "purpose": purpose,
            "judge": self.model,
            "prompt_version": prompt_version,
            "schema_name": schema_name,
            "subject": subject,
            "request": request or {},
            **({"core_key": core_key} if core_key is not None else {}),
            **outcome,
            "time": utc_now(),
        }
        # The line reaches the kernel now, so a killed process keeps it; the fsync runs in the background.
        self.store.append(record, sync=False)
        self._schedule_sync()
        if record["ok"]:
            self.stats.answered += 1
        else:
            self.stats.failed += 1
            logger.warning(
                "judge request %s failed after %d attempt(s) (%s): %s",
                _describe(subject, key), record["attempts"], record["error_kind"], record["error"],
            )
        return JudgeAnswer.from_record(record, cached=False)

    def _schedule_sync(self) -> None:
        if self._sync_task is None or self._sync_task.done():
            self._sync_task = asyncio.ensure_future(self._sync_store())

    async def _sync_store(self) -> None:
        # Group commit: one fsync covers every line appended since the previous one.
        while self.store.needs_sync:
            await asyncio.to_thread(self.store.sync)

    async def flush(self) -> None:
        """Wait until every stored answer is fsynced; call it before the event loop ends."""
        if self._sync_task is not None:
            await self._sync_task
        if self.store.needs_sync:
            await asyncio.to_thread(self.store.sync)

    async def _call_with_retries(
        self,
        messages: list[dict[str, Any]],
        schema: dict[str, Any],
        schema_name: str,
        check: Callable[[Any], None] | None,
    ) -> dict[str, Any]:
        litellm = self._litellm
        import openai  # a litellm dependency; its APIError is the base of litellm's HTTP status errors
        tokens_in = tokens_out = 0
        cost: float | None = 0.0
        started = time.monotonic()
        error = "no attempt was made"
        error_kind = "transient"
        invalid_answer: str | None = None  # text of the last rejected answer, kept for audit
        attempt = 0
        for attempt in range(1, self.max_attempts + 1):
            retry_after: float | None = None
            self.stats.requests += 1
            try:
                response = await litellm.acompletion(
                    model=self.model,
                    messages=messages,
                    api_base=self.api_base,
                    api_key=self.api_key,
                    response_format={
                        "type": "json_schema",
                        "json_schema": {"name": schema_name, "schema": schema, "strict": True},
                    },
                    timeout=self.timeout,
                    max_retries=0,
                    max_tokens=self.max_output_tokens,
                    temperature=self.temperature,
                    drop_params=True,
                    **self.extra_params,
                )
            except (litellm.AuthenticationError, litellm.PermissionDeniedError, litellm.NotFoundError) as exc:
                raise JudgeConfigError(
                    f"the judge {self.model!r} rejected the request set-up: {type(exc).__name__}: {_short(exc)}; "
                    "check the model name, --api-base and the API key"
                ) from exc
            except litellm.BadRequestError as exc:
                error, error_kind = f"{type(exc).__name__}: {_short(exc)}", "request"
                break  # the same request would be rejected again
            except litellm.RateLimitError as exc:
                error, error_kind = f"rate limited (429): {_short(exc)}", "transient"
                retry_after = _retry_after_seconds(exc)
            except litellm.Timeout:
                error, error_kind = f"timed out after {self.timeout} s", "transient"
            except litellm.APIConnectionError as exc:
                error, error_kind = f"connection failed: {_short(exc)}", "transient"
            except (litellm.APIError, openai.APIError) as exc:
                # Server errors (InternalServerError, ServiceUnavailableError, ...) derive from openai.APIError.
                status = getattr(exc, "status_code", None)
                error = f"{type(exc).__name__} (HTTP {status}): {_short(exc)}"
                error_kind = "transient" if status is None or status >= 500 or status == 408 else "request"
                retry_after = _retry_after_seconds(exc)
                if error_kind == "request":
                    break
            else:
                usage = getattr(response, "usage", None)
                call_in = int(getattr(usage, "prompt_tokens", 0) or 0)
                call_out = int(getattr(usage, "completion_tokens", 0) or 0)
                tokens_in += call_in
                tokens_out += call_out
                call_cost = self.cost(call_in, call_out)
                cost = None if call_cost is None or cost is None else cost + call_cost
                self._account(call_in, call_out, call_cost)
                try:
                    data = _parse_answer(response, schema, check)
                except AnswerRejected as exc:
                    error, error_kind = str(exc), "answer"
                    invalid_answer = _answer_text(response) or invalid_answer
                else:
                    return {
                        "ok": True, "answer": data, "error": None, "error_kind": None,
                        "attempts": attempt, "tokens_in": tokens_in, "tokens_out": tokens_out,
                        "cost_usd": cost, "latency_s": round(time.monotonic() - started, 4),
                    }
            if attempt < self.max_attempts:
                delay = self._backoff(attempt, retry_after)
                logger.info("retrying in %.2f s after attempt %d of %d: %s", delay, attempt, self.max_attempts, error)
                await asyncio.sleep(delay)
        failure = {
            "ok": False, "answer": None, "error": error, "error_kind": error_kind,
            "attempts": attempt, "tokens_in": tokens_in, "tokens_out": tokens_out,
            "cost_usd": cost, "latency_s": round(time.monotonic() - started, 4),
        }
        if invalid_answer is not None:
            # Kept for audit only: stored_diagnoses does not copy it into a Diagnosis, so no page or prompt shows it.
            failure["invalid_answer"] = invalid_answer[:MAX_INVALID_ANSWER_CHARS]
        return failure

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Return the delay before the next attempt: exponential backoff with jitter, or a longer Retry-After."""
        exponential = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        delay = exponential * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, retry_after * random.uniform(1.0, 1.1))
        return delay

    def _account(self, tokens_in: int, tokens_out: int, cost: float | None) -> None:
        self.stats.tokens_in += tokens_in
        self.stats.tokens_out += tokens_out
        if cost is None:
            self.stats.unpriced_calls += 1
        else:
            self.stats.spent_usd += cost


def _parse_answer(response: Any, schema: dict[str, Any], check: Callable[[Any], None] | None) -> Any:
    """Return the validated JSON answer of a litellm response, or raise ``AnswerRejected``."""
    choice = response.choices[0]
    content = getattr(choice.message, "content", None)
    if getattr(choice, "finish_reason", None) == "length":
        raise AnswerRejected(f"answer truncated at the output token limit ({len(content or '')} characters received)")
    if not content:
        raise AnswerRejected("answer is empty")
    try:
        data = json.loads(content)
    except ValueError as exc:
        raise AnswerRejected(f"answer is not valid JSON: {exc}") from None
    validate_schema(data, schema)
    if check is not None:
        check(data)
    return data


def _answer_text(response: Any) -> str | None:
    """Return the message text of a litellm response, or None when it has none."""
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) and content else None


def _short(error: BaseException, limit: int = 300) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(subject: dict[str, str] | None, key: str) -> str:
    if subject:
        return f"{subject.get('dataset')}/{subject.get('model')}/{subject.get('instance_id')}"
    return key[:12]
