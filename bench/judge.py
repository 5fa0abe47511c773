"""Benchmark the judge client against the local OpenAI-compatible stub.

Measures, for a stub that answers every request after a fixed latency:

1. achieved calls/s at several concurrency levels, against the limit
   concurrency / latency, and the client's own ceiling (latency 0);
2. client CPU time per call (this process only: litellm, JSON schema check,
   store append with fsync);
3. that a rerun over the same store sends zero requests (counted by the stub);
4. input tokens per diagnosed failure with our prompt versus a plain prompt
   that sends the same fields, on real failures from ``data/`` when present.

Run: ``.venv/bin/python -m bench.judge`` (``--help`` for options). The stub
runs in a subprocess so that it does not share this process's CPU time or GIL.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

from atlas_builder.diagnose.judge import JudgeClient, JudgeStore  # noqa: E402
from atlas_builder.diagnose.judge.client import import_litellm  # noqa: E402
from atlas_builder.diagnose.judge.plan import DiagnosisOptions, Plan, plan_diagnoses  # noqa: E402
from atlas_builder.diagnose.judge.prompts import DIAGNOSE_SCHEMA  # noqa: E402
from atlas_builder.diagnose.judge.run import run_diagnosis  # noqa: E402
from atlas_builder.records import RESULT_COLUMNS, DatasetInfo, Results, Source  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STUB = ROOT / "tests" / "openai_stub.py"
ANSWER = {
    "criteria": [
        {"criterion": "Computes the total of the three amounts.", "met": False, "evidence": "total is 41"},
        {"criterion": "Reports the final number on the last line.", "met": True, "evidence": "Answer: 41"},
    ],
    "first_error": {"criterion": 1, "evidence": "total is 41", "explanation": "12 + 17 + 14 is 43, not 41."},
    "error_title": "Multi-step addition slip",
    "error_summary": "The answer adds three amounts and drops two units on the way.",
    "reference_flag": False,
    "ambiguous_flag": False,
    "flag_reason": "",
}
TOKEN_MODEL = "gpt-4o"  # tokenizer used for the prompt-size comparison


def start_stub(delay: float, workdir: Path) -> tuple[subprocess.Popen, str]:
    """Start the stub server in a subprocess; return it and its API base URL."""
    answer_file = workdir / "answer.json"
    answer_file.write_text(json.dumps(ANSWER))
    process = subprocess.Popen(
        [sys.executable, str(STUB), "--port", "0", "--delay", str(delay), "--answer-file", str(answer_file)],
        stdout=subprocess.PIPE, text=True,
    )
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        process.kill()
        raise RuntimeError(f"the stub did not start: {line!r}")
    return process, line.removeprefix("listening on ")


def stub_requests(api_base: str) -> int:
    """Return how many chat-completion requests the stub has received."""
    with urllib.request.urlopen(api_base.removesuffix("/v1") + "/stats", timeout=5) as response:
        return json.load(response)["requests"]


def synthetic_results(failures: int) -> Results:
    """Return an in-memory atlas with ``failures`` wrong rows of realistic prompt size, and one right row each."""
    rows = []
    for index in range(failures):
        instance = f"q-{index:05d}"
        question = (f"Problem {index}: a shop sells {index % 50 + 3} boxes of pencils on Monday, 17 on Tuesday and "
                    f"14 on Wednesday. Each box holds 12 pencils. " * 6) + "How many boxes were sold in total?"
        wrong = f"Let us add the boxes step by step for problem {index}. " * 10 + "So the total is 41. Answer: 41"
        right = f"Adding the three days for problem {index}. " * 10 + "The total is 43. Answer: 43"
        common = {"dataset": "bench", "instance_id": instance, "input": question, "messages": None,
                  "reference": ("43",), "metadata": {}, "line": index + 1}
        rows.append({**common, "model": "wrong-model", "output": wrong, "score": 0.0, "correct": False})
        rows.append({**common, "model": "right-model", "output": right, "score": 1.0, "correct": True})
    frame = pd.DataFrame(rows)[list(RESULT_COLUMNS)]
    info = DatasetInfo(id="bench", name="Bench arithmetic", description="", task_type="math", metric="exact_match",
                       threshold=1, source=Source("example/bench"), license="CC0-1.0")
    return Results(data_dir=Path("."), datasets={"bench": info}, models={}, files=[], rows=frame)


def measure(plan: Plan, count: int, api_base: str, concurrency: int, latency: float) -> dict[str, Any]:
    """Send ``count`` requests of ``plan`` into a fresh store; return throughput and CPU figures."""
    subset = Plan(plan.requests[:count], failures=count, sampled=count, explained=0)
    with tempfile.TemporaryDirectory() as store_dir:
        store = JudgeStore(Path(store_dir))
        client = JudgeClient("openai/bench-judge", store, api_base=api_base, api_key="bench",
                             max_concurrency=concurrency, timeout=60, max_attempts=1)
        sent_before = stub_requests(api_base)
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        summary = run_diagnosis(subset, client, show_progress=False)
        wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
        sent = stub_requests(api_base) - sent_before

        rerun_client = JudgeClient("openai/bench-judge", JudgeStore(Path(store_dir)), api_base=api_base,
                                   api_key="bench", max_concurrency=concurrency)
        before_rerun = stub_requests(api_base)
        rerun = run_diagnosis(subset, rerun_client, show_progress=False)
        rerun_sent = stub_requests(api_base) - before_rerun
        store.close()
    limit = concurrency / latency if latency > 0 else float("inf")
    rate = summary.answered / wall
    return {
        "concurrency": concurrency, "latency_s": latency, "calls": summary.answered, "failed": summary.failed,
        "stub_requests": sent, "seconds": round(wall, 3), "calls_per_s": round(rate, 1),
        "limit_per_s": round(limit, 1) if limit != float("inf") else None,
        "share_of_limit": round(rate / limit, 3) if limit != float("inf") else None,
        "cpu_ms_per_call": round(1000 * cpu / max(1, summary.answered), 2),
        "rerun_stub_requests": rerun_sent, "rerun_stored": rerun.stored,
    }


def plain_messages(request_fields: dict[str, Any]) -> list[dict[str, str]]:
    """Build a prompt with the same fields and no instructions, fences or criteria steps (the comparison baseline)."""
    parts = [f"Task:\n{request_fields['input']}"]
    if request_fields["reference"]:
        parts.append("Reference answer:\n" + "\n".join(request_fields["reference"]))
    if request_fields["peer"] is not None:
        parts.append(f"Correct answer by another model:\n{request_fields['peer']}")
    parts.append(f"Wrong answer:\n{request_fields['output']}")
    parts.append("Explain why the wrong answer is wrong. Reply in JSON with criteria, first_error, error_title, "
                 "error_summary, reference_flag, ambiguous_flag and flag_reason.")
    return [{"role": "user", "content": "\n\n".join(parts)}]


def token_comparison(data_dir: Path, sample: int) -> dict[str, Any]:
    """Compare input tokens of our prompt and of the plain prompt on up to ``sample`` failures."""
    from atlas_builder.results.load import load_results

    litellm = import_litellm()
    if (data_dir / "results").is_dir():
        results = load_results(data_dir, strict=False)
        source = f"{data_dir} ({len(results.failures())} failures)"
    else:
        results = synthetic_results(sample)
        source = "synthetic failures"
    failures = len(results.failures())
    ratio = min(1.0, max(sample / max(1, failures), 1e-6))
    plan = plan_diagnoses(results, DiagnosisOptions(sample_ratio=ratio, seed=1))
    requests = plan.requests[:sample]
    rows = results.rows.set_index(["dataset", "model", "instance_id"])
    ours, plain, no_peer = [], [], []
    for request in requests:
        row = rows.loc[(request.dataset, request.model, request.instance_id)]
        peer = None
        if request.peer_model is not None:
            peer = rows.loc[(request.dataset, request.peer_model, request.instance_id), "output"]
        fields = {"input": row["input"], "reference": list(row["reference"]), "peer": peer, "output": row["output"]}
        ours.append(litellm.token_counter(model=TOKEN_MODEL, messages=request.messages))
        plain.append(litellm.token_counter(model=TOKEN_MODEL, messages=plain_messages(fields)))
        no_peer.append(litellm.token_counter(model=TOKEN_MODEL, messages=plain_messages({**fields, "peer": None})))
    schema_tokens = litellm.token_counter(model=TOKEN_MODEL, text=json.dumps(DIAGNOSE_SCHEMA))
    return {
        "source": source, "failures": len(requests), "with_peer": sum(r.peer_model is not None for r in requests),
        "ours_mean": round(statistics.mean(ours), 1), "ours_median": statistics.median(ours),
        "plain_mean": round(statistics.mean(plain), 1), "plain_median": statistics.median(plain),
        "plain_without_peer_mean": round(statistics.mean(no_peer), 1),
        "overhead_mean": round(statistics.mean(o - p for o, p in zip(ours, plain)), 1),
        "schema_tokens": schema_tokens,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", default="0.05,0.5",
                        help="comma-separated seconds the stub waits before each response, one series each")
    parser.add_argument("--concurrency", default="1,4,8,16,32,64", help="comma-separated concurrency levels")
    parser.add_argument("--seconds", type=float, default=4.0, help="target run time per level, in seconds")
    parser.add_argument("--max-calls", type=int, default=1500, help="maximum number of calls per level")
    parser.add_argument("--token-sample", type=int, default=300, help="failures for the token comparison")
    parser.add_argument("--data", type=Path, default=ROOT / "data", help="data folder for the token comparison")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    levels = [int(value) for value in args.concurrency.split(",")]
    import_litellm()  # load once, outside the timed runs
    plan = plan_diagnoses(synthetic_results(args.max_calls), DiagnosisOptions())
    figures: dict[str, Any] = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                                          f"Python {platform.python_version()}", "levels": []}
    with tempfile.TemporaryDirectory() as workdir:
        for latency in [float(value) for value in args.latency.split(",")] + [0.0]:
            stub, api_base = start_stub(latency, Path(workdir))
            try:
                measure(plan, 20, api_base, 4, latency)  # warm up connections and code paths
                for concurrency in levels if latency > 0 else [max(levels)]:
                    ceiling = 200.0  # calls/s the client reaches at most here, to size each level
                    expected = min(concurrency / latency, ceiling) if latency > 0 else ceiling
                    count = int(min(args.max_calls, max(50, expected * args.seconds)))
                    result = measure(plan, count, api_base, concurrency, latency)
                    figures["levels"].append(result)
                    print(json.dumps(result), flush=True)
            finally:
                stub.terminate()
                stub.wait()
    figures["tokens"] = token_comparison(args.data, args.token_sample)
    print(json.dumps(figures["tokens"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
