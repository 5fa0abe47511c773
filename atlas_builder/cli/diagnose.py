"""`atlas diagnose`: ask an LLM judge why each failure failed, and store the answers under data/judge/."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from atlas_builder.cli.common import api_key_from_env, check_prices, data_option, judge_options

logger = logging.getLogger(__name__)


def _estimate_input_tokens(judge: str, requests: list[Any]) -> tuple[int, str]:
    """Count the input tokens of ``requests`` with litellm's token counter, or estimate 4 characters per token."""
    from atlas_builder.diagnose.judge.client import import_litellm

    try:
        litellm = import_litellm()
        return sum(litellm.token_counter(model=judge, messages=request.messages) for request in requests), \
            "litellm token_counter"
    except Exception as error:  # a tokenizer that is missing offline, or an unknown model family
        logger.info("litellm could not count tokens for %s (%s); estimating 4 characters per token", judge, error)
        chars = sum(len(message["content"]) for request in requests for message in request.messages)
        return chars // 4, "estimate of 4 characters per token"


def _dry_run(plan: Any, pending: list[Any], store: Any, judge: str, price: tuple[float, float] | None,
             price_source: str) -> None:
    from atlas_builder.diagnose.judge.client import DEFAULT_OUTPUT_TOKENS_ESTIMATE

    tokens_in, method = _estimate_input_tokens(judge, pending) if pending else (0, "nothing to count")
    answered = [record for record in store.report.records if record.get("ok") and record.get("purpose") == "diagnose"]
    if answered:
        per_answer = sum(int(record.get("tokens_out") or 0) for record in answered) // len(answered)
        out_method = f"mean of {len(answered)} stored answers"
    else:
        per_answer, out_method = DEFAULT_OUTPUT_TOKENS_ESTIMATE, "assumed, no stored answers yet"
    tokens_out = per_answer * len(pending)
    click.echo(f"would send {len(pending)} diagnosis requests to {judge} (no call made)")
    click.echo(f"estimated input tokens: {tokens_in:,} ({method})")
    click.echo(f"estimated output tokens: {tokens_out:,} ({per_answer} per answer, {out_method})")
    if price is None:
        click.echo("estimated cost: unknown (litellm has no price for this model; pass --price-in and --price-out)")
    else:
        cost = (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000
        click.echo(f"estimated cost: {cost:.4f} USD (prices per million tokens {price[0]} in, {price[1]} out, from {price_source})")


@click.command(name="diagnose")
@data_option
@judge_options()
@click.option("--backoff", type=click.FloatRange(min=0.0), default=1.0, show_default=True,
              help="Seconds before the first retry; doubles per attempt up to 60 s, with random jitter.")
@click.option("--sample-ratio", type=click.FloatRange(0.0, 1.0, min_open=True), default=1.0, show_default=True,
              help="Fraction of failures to diagnose per model x dataset (rounded up).")
@click.option("--seed", type=int, default=42, show_default=True,
              help="Seed of the failure sample and of the choice of the other model's correct answer.")
@click.option("--max-output-tokens", type=click.IntRange(64), default=4096, show_default=True,
              help="Maximum tokens in one judge answer; a longer answer counts as truncated.")
@click.option("--dry-run", is_flag=True,
              help="Print how many requests would be sent, with estimated tokens and cost, and call nothing.")
@click.option("--no-peer-answer", is_flag=True,
              help="Do not show the judge a correct answer from another model (saves input tokens).")
@click.option("--include-explained", is_flag=True,
              help="Also diagnose failures that a deterministic check explains fully.")
@click.option("--retry-failed", is_flag=True,
              help="Send again requests stored as failed because of an invalid answer or a rejected request "
                   "(requests that failed on rate limits, timeouts or server errors are always sent again).")
@click.option("--refresh-changed-findings", is_flag=True,
              help="Send again failures whose stored answer was made when the deterministic checks reported "
                   "other findings (by default that answer is kept).")
@click.option("--dataset", "datasets", multiple=True, metavar="ID",
              help="Diagnose only this dataset id (repeat for several).")
@click.option("--model", "models", multiple=True, metavar="ID",
              help="Diagnose only this model id (repeat for several).")
def command(
    data_dir: Path, judge: str, api_base: str | None, api_key_env: str | None, max_concurrency: int,
    timeout: float, max_attempts: int, backoff: float, sample_ratio: float, seed: int, budget_usd: float | None,
    total_budget_usd: float | None, price_in: float | None, price_out: float | None, max_output_tokens: int,
    dry_run: bool, no_peer_answer: bool, include_explained: bool, retry_failed: bool, refresh_changed_findings: bool,
    datasets: tuple[str, ...], models: tuple[str, ...],
) -> None:
    """Diagnose failures with an LLM judge and store each answer under DATA/judge/.

    Requests already answered are never sent again, so a rerun continues where
    an interrupted run stopped and a complete run's rerun makes no calls.
    """
    from atlas_builder.diagnose.checks_cache import run_checks_cached
    from atlas_builder.diagnose.judge import (
        JudgeClient,
        JudgeConfigError,
        JudgeStore,
        StoreLockedError,
    )
    from atlas_builder.diagnose.judge.client import litellm_price
    from atlas_builder.diagnose.judge.plan import DiagnosisOptions, plan_diagnoses
    from atlas_builder.diagnose.judge.run import pending_requests, run_diagnosis
    from atlas_builder.results.load import InvalidResultsError, load_results

    check_prices(price_in, price_out)
    try:
        results = load_results(data_dir)
    except InvalidResultsError as error:
        raise click.ClickException(f"{error}\nFix the data, then run 'atlas diagnose' again.") from None
    unknown = [value for value in datasets if value not in results.datasets]
    unknown += [value for value in models if value not in results.models]
    if unknown:
        raise click.BadParameter(f"unknown dataset or model id(s): {', '.join(unknown)}")

    findings = run_checks_cached(results)
    options = DiagnosisOptions(
        sample_ratio=sample_ratio, seed=seed, peer_answer=not no_peer_answer,
        include_explained=include_explained, datasets=datasets, models=models,
    )
    plan = plan_diagnoses(results, options, findings)
    store = JudgeStore.for_data(data_dir)
    found = pending_requests(plan, store, judge, retry_failed, refresh_changed_findings)
    pending = found.requests
    click.echo(
        f"{plan.failures} failures; {plan.sampled} sampled; {plan.explained} skipped as explained by checks; "
        f"{len(plan.requests) - len(pending)} already stored; {len(pending)} to send"
    )
    if found.findings_changed:
        click.echo(
            f"{found.findings_changed} of the stored answers were made when the checks reported other findings; "
            "they are kept (--refresh-changed-findings sends them again)"
        )

    if dry_run:
        price = (price_in, price_out) if price_in is not None else litellm_price(judge)
        source = "--price-in/--price-out" if price_in is not None else "litellm"
        _dry_run(plan, pending, store, judge, price, source)
        return
    if not pending:
        click.echo("nothing to send")
        return

    api_key = api_key_from_env(api_key_env)
    if api_key is None:
        missing = missing_credentials(judge, api_base)
        if missing:
            # litellm reports a missing key as an HTTP 500 on every request, which would be retried as transient.
            raise click.ClickException(
                f"no credentials for judge {judge!r}: set {' and '.join(missing)}, or pass --api-key-env NAME; "
                "a local server that checks no key accepts any value, for example OPENAI_API_KEY=none")
    try:
        store.lock()
        client = JudgeClient(
            judge, store, api_base=api_base, api_key=api_key, max_concurrency=max_concurrency, timeout=timeout,
            max_attempts=max_attempts, backoff_base=backoff, budget_usd=budget_usd,
            total_budget_usd=total_budget_usd, price_in=price_in,
            price_out=price_out, max_output_tokens=max_output_tokens, retry_failed=retry_failed,
        )
        summary = run_diagnosis(plan, client, refresh_changed_findings=refresh_changed_findings)
    except (StoreLockedError, JudgeConfigError) as error:
        raise click.ClickException(str(error)) from None
    finally:
        store.close()

    cost = f"{summary.cost_usd:.4f} USD" + (f" plus {summary.unpriced_calls} calls of unknown price" if summary.unpriced_calls else "")
    click.echo(
        f"answered {summary.answered}, failed {summary.failed}, not sent {summary.not_sent}; "
        f"{summary.http_requests} HTTP requests, {summary.tokens_in:,} tokens in, {summary.tokens_out:,} out, "
        f"cost {cost}, {summary.seconds:.1f} s"
    )
    if summary.budget_reached == "total":
        click.echo(f"total budget of {total_budget_usd} USD for {judge} reached (cost recorded in {store.root} "
                   "included); rerun with a larger --total-budget-usd to send the rest")
    elif summary.budget_reached:
        click.echo(f"budget of {budget_usd} USD reached; rerun with a larger --budget-usd to send the rest")
    if summary.failed:
        click.echo(f"{summary.failed} requests are stored as judge failures with their reason in {store.root}; "
                   "transient ones are retried on the next run, the others with --retry-failed")
    if summary.failed and not summary.answered:
        raise click.ClickException("every request failed; read the warnings above for the reason")


def missing_credentials(judge: str, api_base: str | None) -> list[str]:
    """Return the environment variables litellm needs for ``judge`` and does not find (an API base given counts)."""
    import litellm

    missing = litellm.validate_environment(model=judge, api_base=api_base).get("missing_keys") or []
    return [name for name in missing if not (api_base and name.endswith("_API_BASE"))]
