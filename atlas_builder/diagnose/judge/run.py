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
from atlas_builder.diagnose.judge.store import JudgeStore, record_settles

logger = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What one run did."""

    planned: int  # requests in the plan
    stored: int  # requests already settled in the store (no call)
    findings_changed: int  # of ``stored``: settled by an answer made with other check findings
    to_send: int  # requests this run had to send
    answered: int = 0
    failed: int = 0  # requests recorded as judge failures
    not_sent: int = 0  # requests left unsent because the budget was reached
    budget_reached: str | None = None  # BudgetExceeded.scope ("run" or "total") when a budget stopped the run
    http_requests: int = 0  # retries included
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0  # cost of calls with a known price
    unpriced_calls: int = 0
    seconds: float = 0.0


@dataclass
class Pending:
    """The planned requests that need a call, and how many the store settles by core key only."""

    requests: list[DiagnosisRequest]
    findings_changed: int  # settled by an answer made when the checks reported other findings


def pending_requests(
    plan: Plan, store: JudgeStore, judge: str, retry_failed: bool = False, refresh_changed_findings: bool = False
) -> Pending:
    """Return the planned requests to ``judge`` that ``store`` does not settle yet.

    A request whose exact key has no settling record is still settled by a
    record with its core key (the same failure, other check findings), unless
    ``refresh_changed_findings``.
    """
    pending = []
    findings_changed = 0
    for request in plan.requests:
        if record_settles(store.get(request.key(judge)), retry_failed):
            continue
        if not refresh_changed_findings and record_settles(store.get_core(request.core_key(judge)), retry_failed):
            findings_changed += 1
            continue
        pending.append(request)
    return Pending(pending, findings_changed)


async def send_requests(
    requests: list[DiagnosisRequest], client: JudgeClient, *, show_progress: bool = True
) -> tuple[int, int, str | None]:
    """Send ``requests`` with ``client.max_concurrency`` workers; return (answered, failed, budget scope or None).

    Once the budget is reached no new request starts, and the requests in
    flight finish and are stored. A ``JudgeConfigError`` stops every worker and
    is raised.
    """
    queue = deque(requests)
    answered = failed = 0
    budget_reached: str | None = None
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
                    core_key=request.core_key(client.model),
                )
            except BudgetExceeded as error:
                if not budget_reached:
                    logger.warning("%s; stopping after the calls in flight", error)
                budget_reached = error.scope
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


def run_diagnosis(
    plan: Plan, client: JudgeClient, *, show_progress: bool = True, refresh_changed_findings: bool = False
) -> RunSummary:
    """Send every planned request that the store does not settle, in one event loop, and summarise."""
    started = time.monotonic()
    found = pending_requests(plan, client.store, client.model, client.retry_failed, refresh_changed_findings)
    pending = found.requests
    summary = RunSummary(planned=len(plan.requests), stored=len(plan.requests) - len(pending),
                         findings_changed=found.findings_changed, to_send=len(pending))
    logger.info(
        "%d diagnosis requests planned, %d already stored (%d of them with other check findings), %d to send to %s",
        summary.planned, summary.stored, summary.findings_changed, summary.to_send, client.model,
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
