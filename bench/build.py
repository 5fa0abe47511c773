"""Benchmark ``atlas build`` on a synthetic atlas, side by side with a bare ``mkdocs build``.

One command, for one scale:

1. generate the synthetic atlas with ``bench/generate.py`` unless it already exists;
2. run a cold full ``atlas build`` (time, peak RSS of the process tree, step timings from its log);
3. run ``mkdocs build`` on the MkDocs sources that build wrote (the floor);
4. rebuild with nothing changed, after editing one dataset's description, and after adding one model;
5. undo the edits so the data stays as generated, print the figures and write them as JSON.

``--profile`` adds one more cold full build, in a fresh folder, under pyinstrument and records its top entries.
Run ``python -m bench.build --help`` for the options.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench import generate as gen

STEP_LINE = re.compile(r"step (?P<step>[\w.-]+): done in (?P<seconds>[0-9.]+) s")
#: The parts of the site step that the build logs on their own lines.
SITE_PARTS = (
    ("site.pages", re.compile(r"site sources: .*\((?P<seconds>[0-9.]+) s pages")),
    ("site.charts", re.compile(r"site sources: .* (?P<seconds>[0-9.]+) s charts\)")),
    ("site.mkdocs", re.compile(r"mkdocs build --strict: (?P<seconds>[0-9.]+) s")),
)
POLL_SECONDS = 0.05
#: PSS (proportional set size) counts a page shared by forked workers once in all, where RSS counts it in
#: every process. Reading it costs a walk of /proc/<pid>/smaps_rollup, so it is polled less often than RSS.
PSS_EVERY = 10
EDITED_DATASET_INDEX = 0


@dataclass
class Run:
    """One measured command: wall time, peak memory, exit status and the step timings it logged."""

    label: str
    command: list[str]
    seconds: float
    peak_rss_mb: float  # sum of the RSS of the process and all its children, polled
    max_rss_mb: float  # ru_maxrss of the top process alone, from wait4
    peak_pss_mb: float  # sum of the PSS of the process and all its children, polled every PSS_EVERY polls
    exit_code: int
    steps: dict[str, float] = field(default_factory=dict)
    log: str = ""
    files_rewritten: int | None = None  # site and docs files whose mtime or size changed
    files_changed: int | None = None  # site and docs files whose content changed, plus added and removed files


def measure(label: str, command: list[str], *, cwd: Path, log_path: Path) -> Run:
    """Run ``command``, polling the RSS of its process tree; its output goes to ``log_path``.

    The parsed-result cache goes to ``<cwd>/.atlas-cache/results`` whatever ``ATLAS_CACHE_DIR``
    says outside, so that the first build in a fresh work folder is cold.
    """
    env = dict(os.environ, LITELLM_OFFLINE_MODE="true", NO_MKDOCS_2_WARNING="1", PYTHONUNBUFFERED="1",
               ATLAS_CACHE_DIR=str(cwd / ".atlas-cache" / "results"))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        peak = peak_pss = polls = 0
        watched = psutil.Process(process.pid)
        while True:
            finished, status, usage = os.wait4(process.pid, os.WNOHANG)
            if finished:
                break
            peak = max(peak, _tree_memory(watched, "rss"))
            if polls % PSS_EVERY == 0:
                peak_pss = max(peak_pss, _tree_memory(watched, "pss"))
            polls += 1
            time.sleep(POLL_SECONDS)
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    text = log_path.read_text(encoding="utf-8", errors="replace")
    steps = {match["step"]: float(match["seconds"]) for match in STEP_LINE.finditer(text)}
    for name, pattern in SITE_PARTS:
        found = pattern.search(text)
        if found:
            steps[name] = float(found["seconds"])
    max_rss = usage.ru_maxrss / 1024
    return Run(label, command, round(seconds, 2), round(max(peak / 2**20, max_rss), 1), round(max_rss, 1),
               round(peak_pss / 2**20, 1), process.returncode, steps, text[-3000:])


def _tree_memory(process: psutil.Process, kind: str) -> int:
    """Return the summed ``rss`` or ``pss`` in bytes of ``process`` and its children (0 once it is gone)."""
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for member in members:
        try:
            info = member.memory_full_info() if kind == "pss" else member.memory_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += getattr(info, kind)
    return total


def snapshot(*folders: Path) -> dict[str, tuple[int, int, str]]:
    """Map every file under ``folders`` to (mtime_ns, size, sha256), to count what a build rewrote."""
    state = {}
    for folder in folders:
        if not folder.exists():
            continue
        for path in folder.rglob("*"):
            if path.is_file():
                info = path.stat()
                state[str(path)] = (info.st_mtime_ns, info.st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    return state


def compare(before: dict[str, tuple[int, int, str]], after: dict[str, tuple[int, int, str]]) -> tuple[int, int]:
    """Return (files rewritten, files whose content changed or that were added or removed)."""
    rewritten = sum(1 for path, value in after.items() if path not in before or before[path][:2] != value[:2])
    changed = sum(1 for path, value in after.items() if path not in before or before[path][2] != value[2])
    changed += sum(1 for path in before if path not in after)
    return rewritten, changed


def find_mkdocs_config(docs_dir: Path, log: str) -> Path | None:
    """Find the MkDocs config that the build wrote: under ``docs_dir``, else a path named in its log."""
    found = sorted(docs_dir.rglob("mkdocs.yml")) + sorted(docs_dir.rglob("mkdocs.yaml"))
    if found:
        return found[0]
    for match in re.finditer(r"(/[^\s'\"]+/mkdocs\.ya?ml)", log):
        if Path(match.group(1)).exists():
            return Path(match.group(1))
    return None


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def atlas_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "atlas_builder", "-v", *args]


def ensure_data(config: gen.Config, data_dir: Path, jobs: int | None, explicit: bool) -> tuple[gen.Config, dict[str, Any] | None]:
    """Return the config of the atlas in ``data_dir``, generating it first when needed, and the generation figures.

    An explicit ``--data`` folder that already contains a synthetic atlas is used as it is,
    whatever options it was generated with; the default folder is regenerated when its
    options differ from ``config``.
    """
    marker = gen.read_marker(data_dir)
    if marker is not None and marker.get("generator_version") == gen.GENERATOR_VERSION:
        if explicit or marker.get("config") == asdict(config):
            return gen.Config(**marker["config"]), None
    print(f"generating the synthetic atlas into {data_dir} ...", file=sys.stderr)
    return config, gen.generate(config, data_dir, jobs=jobs, force=marker is not None)


def profile_build(build_args: list[str], work: Path, top: int) -> dict[str, Any]:
    """Run one full build under pyinstrument; return its top functions by own time and the text report."""
    from pyinstrument.session import Session

    session_path = work / "profile.pyisession"
    command = [sys.executable, "-m", "pyinstrument", "-r", "pyisession", "-o", str(session_path),
               "-m", "atlas_builder", "-v", *build_args]
    run = measure("profiled full build", command, cwd=work, log_path=work / "logs" / "profile.log")
    if run.exit_code != 0 or not session_path.exists():
        return {"error": f"profiled build failed with exit code {run.exit_code}", "log": run.log}
    session = Session.load(str(session_path))
    own: dict[str, float] = {}
    total: dict[str, float] = {}

    def walk(frame: Any, seen: frozenset[str]) -> None:
        if frame.is_synthetic:  # "[self]" and similar nodes; their time is in their parent's total_self_time
            return
        name = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
        own[name] = own.get(name, 0.0) + frame.total_self_time
        if name not in seen:  # count recursive calls once in the cumulative time
            total[name] = total.get(name, 0.0) + frame.time
        for child in frame.children:
            walk(child, seen | {name})

    root = session.root_frame()
    if root is not None:
        walk(root, frozenset())
    text_report = subprocess.run(
        [sys.executable, "-m", "pyinstrument", "--load", str(session_path), "-r", "text", "--show-all"],
        capture_output=True, text=True, check=False).stdout
    (work / "profile.txt").write_text(text_report, encoding="utf-8")
    return {
        "seconds": round(session.duration, 2),
        "top_own_time": [[name, round(seconds, 2)] for name, seconds in sorted(own.items(), key=lambda kv: -kv[1])[:top]],
        "top_cumulative": [[name, round(seconds, 2)] for name, seconds in sorted(total.items(), key=lambda kv: -kv[1])[:top]],
        "report": str(work / "profile.txt"),
    }


def run_benchmark(args: argparse.Namespace) -> int:
    config = gen.Config(seed=args.seed, scale=args.scale, axis=args.axis, instances_factor=args.instances_factor)
    data_dir = (args.data or gen.default_out(args.scale, args.axis, args.instances_factor)).resolve()
    work = (args.work or data_dir.parent / f"{data_dir.name}-work").resolve()
    config, generation = ensure_data(config, data_dir, args.jobs, explicit=args.data is not None)
    figures: dict[str, Any] = {"machine": machine(), "config": asdict(config), "data": str(data_dir)}
    if generation is not None:
        figures["generation"] = generation
    marker = gen.read_marker(data_dir) or {}
    figures["data_summary"] = {key: marker.get(key) for key in ("models", "datasets", "rows", "failures",
                                                                "judge_answers", "bytes")}

    if work.exists() and any(work.iterdir()) and not (work / "logs").is_dir():
        print(f"error: {work} is not empty and contains no logs/ from an earlier benchmark; choose another --work",
              file=sys.stderr)
        return 2
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    site, docs = work / "site", work / "docs"
    build_args = ["build", "--data", str(data_dir), "--out", str(site), "--docs", str(docs)]
    runs: list[Run] = []

    help_run = subprocess.run(atlas_command("build", "--help"), capture_output=True, text=True, cwd=work, check=False)
    if help_run.returncode != 0:
        return fail(figures, work, "`atlas build` is not available", help_run.stdout + help_run.stderr)
    figures["build_help"] = help_run.stdout

    full = measure("full build (cold)", atlas_command(*build_args), cwd=work, log_path=work / "logs" / "full.log")
    runs.append(full)
    if full.exit_code != 0:
        figures["runs"] = [asdict(run) for run in runs]
        return fail(figures, work, f"`atlas build` failed with exit code {full.exit_code}", full.log)

    config_path = find_mkdocs_config(docs, full.log)
    if config_path is None:
        figures["floor"] = f"no mkdocs.yml found under {docs} or named in the build log"
    else:
        floor = measure("bare mkdocs build (floor)",
                        [sys.executable, "-m", "mkdocs", "build", "-f", str(config_path), "-d", str(work / "floor-site")],
                        cwd=config_path.parent, log_path=work / "logs" / "floor.log")
        runs.append(floor)

    edited = gen.dataset_id(EDITED_DATASET_INDEX)
    original_yaml: bytes | None = None
    added: list[Path] = []
    try:
        runs.append(incremental("rebuild, nothing changed", build_args, work, site, docs, lambda: None))

        def edit() -> None:
            nonlocal original_yaml
            original_yaml = gen.edit_dataset_description(data_dir, edited)

        runs.append(incremental(f"rebuild after editing {edited}'s description", build_args, work, site, docs, edit))

        def add() -> None:
            added.extend(gen.add_model(config, data_dir))

        runs.append(incremental("rebuild after adding one model", build_args, work, site, docs, add))
    finally:
        if original_yaml is not None:
            (data_dir / "datasets" / f"{edited}.yaml").write_bytes(original_yaml)
        for path in added:
            path.unlink(missing_ok=True)

    if args.profile:
        # A fresh folder, so the profiled build is cold like the first one: no caches, no earlier site.
        profile_work = work / "profile"
        profile_work.mkdir()
        profile_args = ["build", "--data", str(data_dir), "--out", str(profile_work / "site"),
                        "--docs", str(profile_work / "docs")]
        figures["profile"] = profile_build(profile_args, profile_work, args.top)

    figures["runs"] = [asdict(run) for run in runs]
    figures["steps_logged"] = bool(full.steps)
    write_figures(figures, work)
    print_summary(figures, runs)
    return 0 if all(run.exit_code == 0 for run in runs) else 1


def incremental(label: str, build_args: list[str], work: Path, site: Path, docs: Path, change: Any) -> Run:
    """Apply ``change`` to the data, rebuild, and count the site and docs files the rebuild touched."""
    change()
    before = snapshot(site, docs)
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    run = measure(label, atlas_command(*build_args), cwd=work, log_path=work / "logs" / f"{slug}.log")
    run.files_rewritten, run.files_changed = compare(before, snapshot(site, docs))
    return run


def fail(figures: dict[str, Any], work: Path, message: str, log: str) -> int:
    figures["error"] = message
    figures["error_log"] = log[-3000:]
    write_figures(figures, work)
    print(f"error: {message}. Last output:\n{log[-3000:]}", file=sys.stderr)
    print("The benchmark needs a working `atlas build`; fix the error above and rerun.", file=sys.stderr)
    return 2


def write_figures(figures: dict[str, Any], work: Path) -> None:
    path = work / "build-figures.json"
    path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"figures written to {path}", file=sys.stderr)


def print_summary(figures: dict[str, Any], runs: list[Run]) -> None:
    machine_info = figures["machine"]
    summary = figures["data_summary"]
    print(f"machine: {machine_info['nproc']} CPUs, {machine_info['memory_gb']} GB, Python {machine_info['python']}")
    print(f"data: {summary['models']} models x {summary['datasets']} datasets, {summary['rows']:,} rows, "
          f"{(summary['bytes'] or 0) / 1e9:.2f} GB")
    if "generation" in figures:
        print(f"generation: {figures['generation']['seconds']} s")
    full = runs[0]
    floor = next((run for run in runs if run.label.startswith("bare mkdocs")), None)
    print("| run | seconds | vs full | peak RSS, tree (MB) | peak PSS, tree (MB) | files rewritten | files changed |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        ratio = f"{run.seconds / full.seconds:.2f}x" if full.seconds else "-"
        print(f"| {run.label} | {run.seconds:.1f} | {ratio} | {run.peak_rss_mb:.0f} | {run.peak_pss_mb:.0f} | "
              f"{'-' if run.files_rewritten is None else run.files_rewritten} | "
              f"{'-' if run.files_changed is None else run.files_changed} |")
    if floor is not None and floor.seconds:
        print(f"full build / mkdocs floor: {full.seconds / floor.seconds:.2f}x (goal <= 1.5x)")
    else:
        print(f"floor: {figures.get('floor', 'not measured')}")
    if full.steps:
        print("steps of the full build: " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in full.steps.items()))
    else:
        print("steps: the build log has no 'step <name>: done in <seconds> s' lines, so there is no breakdown")
    profile = figures.get("profile")
    if profile and "top_own_time" in profile:
        print("profile, top own time:")
        for name, seconds in profile["top_own_time"]:
            print(f"  {seconds:8.2f} s  {name}")


#: ``load_results`` without the parquet cache, then with an empty cache, then with the cache it filled.
LOADER_MODES = ("no-cache", "cache-cold", "cache-warm")


def loader_child(mode: str, data_dir: str, cache_dir: str) -> None:
    """Load the data one way and print the row count and timing (run in a child process by ``--loader``)."""
    os.environ["ATLAS_CACHE_DIR"] = cache_dir
    from atlas_builder.results import load_results

    start = time.perf_counter()
    rows = load_results(Path(data_dir), use_cache=mode != "no-cache").rows
    print(f"step {mode}: done in {time.perf_counter() - start:.2f} s")
    print(f"rows {len(rows)}, frame {rows.memory_usage(deep=True).sum() / 2**20:.0f} MB (deep)")


def run_loader_benchmark(args: argparse.Namespace) -> int:
    """Measure ``load_results`` and the parquet-cache read path, each in its own process."""
    config = gen.Config(seed=args.seed, scale=args.scale, axis=args.axis, instances_factor=args.instances_factor)
    data_dir = (args.data or gen.default_out(args.scale, args.axis, args.instances_factor)).resolve()
    work = (args.work or data_dir.parent / f"{data_dir.name}-loader").resolve()
    config, generation = ensure_data(config, data_dir, args.jobs, explicit=args.data is not None)
    cache_dir = work / "cache"
    if cache_dir.exists():
        shutil.rmtree(cache_dir)
    work.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {"machine": machine(), "config": asdict(config), "data": str(data_dir), "runs": []}
    if generation is not None:
        figures["generation"] = generation
    print("| loader | seconds | peak RSS (MB) |")
    print("|---|---:|---:|")
    for mode in LOADER_MODES:
        code = f"from bench.build import loader_child; loader_child({mode!r}, {str(data_dir)!r}, {str(cache_dir)!r})"
        run = measure(mode, [sys.executable, "-c", code], cwd=gen.REPO_ROOT, log_path=work / "logs" / f"{mode}.log")
        figures["runs"].append(asdict(run))
        print(f"| {mode} | {run.seconds:.1f} | {run.peak_rss_mb:.0f} |")
        if run.exit_code != 0:
            print(run.log, file=sys.stderr)
            write_figures(figures, work)
            return 1
    cache_bytes = sum(path.stat().st_size for path in cache_dir.rglob("*.parquet"))
    figures["cache_bytes"] = cache_bytes
    print(f"cache size: {cache_bytes / 1e9:.2f} GB")
    if args.profile:
        code = f"from bench.build import loader_child; loader_child('no-cache', {str(data_dir)!r}, 'off')"
        subprocess.run([sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(work / "load-profile.txt"),
                        "-c", code], cwd=gen.REPO_ROOT, check=False)
        print(f"profile of load_results written to {work / 'load-profile.txt'}")
    write_figures(figures, work)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1, help="synthetic atlas scale (see bench/generate.py)")
    parser.add_argument("--axis", choices=("models", "datasets"), default="models", help="which count --scale multiplies")
    parser.add_argument("--instances-factor", type=float, default=1.0, help="multiply every dataset's instance count")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the generator")
    parser.add_argument("--data", type=Path, default=None,
                        help="synthetic data folder (default: bench/out/<scale>/data); generated when it contains none")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the built sites, logs and figures, emptied first (default: <data>-work)")
    parser.add_argument("--jobs", type=int, default=None, help="generator worker processes (default: CPU count)")
    parser.add_argument("--profile", action="store_true", help="also profile one full build with pyinstrument")
    parser.add_argument("--top", type=int, default=25, help="profile entries to record (default: 25)")
    parser.add_argument("--loader", action="store_true",
                        help="measure only result loading: load_results, then a cold and a warm parquet cache")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_loader_benchmark(args) if args.loader else run_benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
