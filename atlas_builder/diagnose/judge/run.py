"""``run_diagnosis``: send the planned diagnosis requests through a ``JudgeClient``."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from dataclasses import dataclass

from tqdm import tqdm

from atlas_builder.diagnose.judge.client import BudgetExceeded, JudgeClient
from atlas_builder.diagnose.judge.plan import PURPOSE, DiagnosisRequest, Plan
from atlas_builder.diagnose.judge.prompts import DIAGNOSE_SCHEMA, DIAGNOSE_SCHEMA_NAME, check_diagnosis
from atlas_builder.diagnose.judge.store import JudgeStore, record_settles, request_key

logger = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What one run did."""

    planned: int  # requests in the plan
    stored: int  # requests already settled in the store (no call)
    to_send: int  # requests this run had to send
    answered: int = 0
    failed: int = 0  # requests recorded as judge failures
    not_sent: int = 0  # requests left unsent because the budget was reached
    budget_reached: bool = False
    http_requests: int = 0  # retries included
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0  # cost of calls with a known price
    unpriced_calls: int = 0
    seconds: float = 0.0


def pending_requests(plan: Plan, store: JudgeStore, judge: str, retry_failed: bool = False) -> list[DiagnosisRequest]:
    """Return the planned requests to ``judge`` that ``store`` does not settle yet."""
    pending = []
    for request in plan.requests:
        key = request_key(request.messages, judge, request.prompt_version, DIAGNOSE_SCHEMA)
        if not record_settles(store.get(key), retry_failed):
            pending.append(request)
    return pending


async def send_requests(
    requests: list[DiagnosisRequest], client: JudgeClient, *, show_progress: bool = True
) -> tuple[int, int, bool]:
    """Send ``requests`` with ``client.max_concurrency`` workers; return (answered, failed, budget_reached).

    Once the budget is reached no new request starts, and the requests in
    flight finish and are stored. A ``JudgeConfigError`` stops every worker and
    is raised.
    """
    queue = deque(requests)
    answered = failed = 0
    budget_reached = False
    bar = tqdm(total=len(requests), desc="diagnose", unit="call", file=sys.stderr, disable=None if show_progress else True,
               dynamic_ncols=True)

    async def worker() -> None:
        nonlocal answered, failed, budget_reached
        while queue and not budget_reached:
            request = queue.popleft()
            try:
                answer = await client.complete_json(
                    purpose=PURPOSE,
                    prompt_version=request.prompt_version,
                    messages=request.messages,
                    schema=DIAGNOSE_SCHEMA,
                    schema_name=DIAGNOSE_SCHEMA_NAME,
                    subject=request.subject,
                    request=request.request_info,
                    check=check_diagnosis,
                )
            except BudgetExceeded as error:
                if not budget_reached:
                    logger.warning("%s; stopping after the calls in flight", error)
                budget_reached = True
                queue.appendleft(request)
                return
            if answer.ok:
                answered += 1
            else:
                failed += 1
            bar.update(1)
            bar.set_postfix(failed=failed, cost=f"${client.stats.spent_usd:.4f}", refresh=False)

    workers = [asyncio.create_task(worker()) for _ in range(min(client.max_concurrency, len(requests)) or 1)]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    finally:
        bar.close()
        await client.flush()
    return answered, failed, budget_reached


def run_diagnosis(plan: Plan, client: JudgeClient, *, show_progress: bool = True) -> RunSummary:
    """Send every planned request that the store does not settle, in one event loop, and summarise."""
    started = time.monotonic()
    pending = pending_requests(plan, client.store, client.model, client.retry_failed)
    summary = RunSummary(planned=len(plan.requests), stored=len(plan.requests) - len(pending), to_send=len(pending))
    logger.info(
        "%d diagnosis requests planned, %d already stored, %d to send to %s",
        summary.planned, summary.stored, summary.to_send, client.model,
    )
    if pending:
        summary.answered, summary.failed, summary.budget_reached = asyncio.run(
            send_requests(pending, client, show_progress=show_progress)
        )
    summary.not_sent = summary.to_send - summary.answered - summary.failed
    stats = client.stats
    summary.http_requests = stats.requests
    summary.tokens_in, summary.tokens_out = stats.tokens_in, stats.tokens_out
    summary.cost_usd, summary.unpriced_calls = stats.spent_usd, stats.unpriced_calls
    summary.seconds = time.monotonic() - started
    return summary
