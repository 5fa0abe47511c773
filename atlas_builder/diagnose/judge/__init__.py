"""The LLM judge: diagnoses failures through litellm and stores every answer.

For the build, ``stored_diagnoses(results, data_dir) -> list[Diagnosis]``
reads stored answers only; importing this package never imports litellm.

For any stage that asks the judge something (diagnosis here, the taxonomy's
induce/classify prompts elsewhere), ``JudgeClient`` is the one way to call it::

    from atlas_builder.diagnose.judge import JudgeClient, JudgeStore, BudgetExceeded, JudgeConfigError

    store = JudgeStore.for_data(data_dir)      # data/judge/, append-only JSON Lines
    store.lock()                               # one writing process at a time
    client = JudgeClient("openai/gpt-4o-mini", store, api_base=None, api_key=None,
                         max_concurrency=8, timeout=120, max_attempts=4,
                         budget_usd=None, total_budget_usd=None, price_in=None, price_out=None)
    answer = await client.complete_json(
        purpose="taxonomy-induce",             # slug; selects the store folder data/judge/<purpose>/
        prompt_version="taxonomy-induce-v1",   # bump it whenever the template's wording changes
        messages=[{"role": "system", "content": ...}, {"role": "user", "content": ...}],
        schema={...}, schema_name="taxonomy",  # JSON schema sent as response_format and checked locally
        subject=None,                          # or {"dataset", "model", "instance_id"} for one failure
        request={"batch": 3},                  # anything you need later to rebuild the messages
        check=None,                            # optional callable raising prompts.AnswerRejected
        core_key=None,                         # optional second key, stored with the record (see plan)
    )
    answer.ok, answer.data, answer.error, answer.cached, answer.tokens_in, answer.cost_usd

- The store key is sha256 of (messages, judge model, prompt version, schema),
  so a request already answered is never sent again (``answer.cached``).
- Retries: 429 (honouring ``Retry-After``), 5xx, timeouts and connection
  errors with exponential backoff and jitter; invalid JSON, a truncated answer
  (``finish_reason="length"``) or a schema/``check`` violation is retried too.
  After ``max_attempts`` the failure is stored with its reason (``ok`` False).
- ``BudgetExceeded`` is raised before a call that would pass the run or total budget;
  ``JudgeConfigError`` when credentials or the model name are rejected.
- Calls of one client share one concurrency limit; run them in one event loop
  and ``await client.flush()`` before it ends (the store fsyncs in groups).
- Untrusted text in a prompt goes between fence lines: ``prompts.fence_marker``
  returns a marker none of the texts contains (see ``prompts/diagnose-v1.j2``).

Per-failure diagnosis: ``plan.plan_diagnoses`` picks failures and renders
requests, ``run.run_diagnosis(plan, client)`` sends the missing ones; the store
layout is described in ``store``, the ``Diagnosis.details`` shape in ``stored``.
"""

from __future__ import annotations

from atlas_builder.diagnose.judge.client import BudgetExceeded, JudgeAnswer, JudgeClient, JudgeConfigError
from atlas_builder.diagnose.judge.prompts import AnswerRejected
from atlas_builder.diagnose.judge.store import JudgeStore, StoreLockedError
from atlas_builder.diagnose.judge.stored import stored_diagnoses

__all__ = [
    "AnswerRejected",
    "BudgetExceeded",
    "JudgeAnswer",
    "JudgeClient",
    "JudgeConfigError",
    "JudgeStore",
    "StoreLockedError",
    "stored_diagnoses",
]
