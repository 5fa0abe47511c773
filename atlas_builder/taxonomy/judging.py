"""How the taxonomy stage talks to the judge: a small protocol and a repair loop.

Every request goes through the diagnosis stage's ``JudgeClient`` (same store
under ``data/judge/``, retries and budget); the protocol below is the part of
it this stage uses, so unit tests can drive the logic with a fake.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Protocol

from atlas_builder.diagnose.judge.prompts import AnswerRejected

logger = logging.getLogger(__name__)

#: Rounds of "your answer was rejected because ..." follow-ups after the client's own retries.
DEFAULT_REPAIR_ROUNDS = 2


class JudgeReply(Protocol):
    """The fields of a judge answer that this stage reads."""

    ok: bool
    data: Any
    error: str | None


class JsonJudge(Protocol):
    """A judge that returns schema-valid JSON, like ``JudgeClient``."""

    model: str

    async def complete_json(
        self,
        *,
        purpose: str,
        prompt_version: str,
        messages: list[dict[str, Any]],
        schema: dict[str, Any],
        schema_name: str,
        check: Callable[[Any], None] | None = None,
        request: dict[str, Any] | None = None,
    ) -> JudgeReply: ...


class JudgeUnusableError(RuntimeError):
    """Raised when the judge gave no acceptable answer to a request after every retry and repair round."""


async def ask_json(
    judge: JsonJudge,
    *,
    purpose: str,
    prompt_version: str,
    messages: list[dict[str, str]],
    schema: dict[str, Any],
    schema_name: str,
    check: Callable[[Any], None],
    request: dict[str, Any] | None = None,
    repair_rounds: int = DEFAULT_REPAIR_ROUNDS,
) -> Any:
    """Return the judge's answer to ``messages`` that passes ``check``.

    The client retries a rejected answer with the same messages. When it still
    fails, this adds the rejected answer and the reason to the conversation and
    asks again, up to ``repair_rounds`` times; each round is a new request with
    its own store key. Raises ``JudgeUnusableError`` when no round succeeds.
    """
    conversation = list(messages)
    last_error = "no request was made"
    for round_number in range(repair_rounds + 1):
        reply = await judge.complete_json(
            purpose=purpose, prompt_version=prompt_version, messages=conversation, schema=schema,
            schema_name=schema_name, check=check, request=request,
        )
        if reply.ok:
            data = reply.data
            try:
                check(data)  # a stored answer may predate a stricter check
            except AnswerRejected as error:
                last_error = str(error)
            else:
                return data
        else:
            last_error = reply.error or "unknown judge failure"
            data = None  # the client keeps no rejected answer, only the reason
        logger.warning("%s (%s): answer rejected in round %d: %s", purpose, prompt_version, round_number + 1, last_error)
        conversation = list(messages)
        if data is not None:
            conversation.append({"role": "assistant", "content": json.dumps(data, ensure_ascii=False)})
        conversation.append({
            "role": "user",
            "content": f"Your previous answer was rejected: {last_error}. Answer again, following every rule above.",
        })
    raise JudgeUnusableError(
        f"the judge gave no acceptable {purpose} answer after {repair_rounds + 1} rounds; last problem: {last_error}. "
        "Check the judge model and --api-base, or rerun to retry"
    )
