"""Validation of result lines and metadata files; every problem names its file, line and fix."""

from __future__ import annotations

import json
import math
from typing import Any

from atlas_builder.ids import slug_problem
from atlas_builder.records import TASK_TYPES, Problem

RESULT_KEYS_REQUIRED = ("id", "input", "output", "score")
RESULT_KEYS_OPTIONAL = ("reference", "correct", "metadata")
MAX_LINE_BYTES = 2_000_000
MAX_FIELD_CHARS = 500_000
MAX_FILE_BYTES = 60_000_000
MAX_MESSAGES = 500

DATASET_KEYS_REQUIRED = ("id", "name", "description", "task_type", "metric", "threshold", "source", "license")
DATASET_KEYS_OPTIONAL = ("aliases", "publishing", "subset", "citation", "score_range")
MODEL_KEYS_REQUIRED = ("id", "name")
MODEL_KEYS_OPTIONAL = ("organization", "family", "parameters", "aliases", "sources", "license", "description")
SOURCE_KEYS = ("repository", "commit", "path", "url")
PUBLISHING_KEYS = ("text", "excerpt_chars", "content_warning", "reason")

#: ``atlas import`` writes this prefix into metadata values it cannot infer; validation rejects it.
PLACEHOLDER_PREFIX = "TODO"
UTF8_BOM = b"\xef\xbb\xbf"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON; write the score as a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of the range of a 64-bit float; write a finite number")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 300:
        raise ValueError(f"integer of {len(text)} digits is out of the range of a 64-bit float; write a smaller number")
    return int(text)


def parse_result_line(raw: bytes, path: str, line: int) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Parse and check one line of a result file; return the object (None if unusable) and its problems."""
    if len(raw) > MAX_LINE_BYTES:
        return None, [Problem(path, line, f"line is {len(raw):,} bytes, over the limit of {MAX_LINE_BYTES:,}",
                              "shorten the input or output, or store an excerpt")]
    if raw.startswith(UTF8_BOM):
        return None, [Problem(path, line, "line starts with a UTF-8 byte order mark (BOM)",
                              "save the file as UTF-8 without a BOM")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, [Problem(path, line, f"invalid UTF-8 at byte {error.start}", "re-encode the file as UTF-8")]
    try:
        obj = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except RecursionError:
        return None, [Problem(path, line, "invalid JSON: nested too deeply to read",
                              "flatten the object; metadata should be a few levels deep at most")]
    except ValueError as error:
        return None, [Problem(path, line, f"invalid JSON: {error}", "write one JSON object per line")]
    if not isinstance(obj, dict):
        return None, [Problem(path, line, f"expected a JSON object, got {type(obj).__name__}",
                              "write one JSON object per line")]
    # Strict UTF-8 decoding rejects encoded surrogates, so only a JSON \u escape can put an
    # unpaired surrogate into a string. The check re-encodes the whole object, a third of the
    # parse time of a line, so lines without an escape skip it.
    return obj, _check_fields(obj, path, line, surrogates=b"\\u" in raw)


def _unencodable(obj: Any) -> bool:
    """Return True when ``obj`` contains a string that UTF-8 cannot encode, such as an unpaired surrogate."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return True
    return False


def check_result_object(obj: dict[str, Any], path: str, line: int) -> list[Problem]:
    """Return the problems of one parsed result object."""
    return _check_fields(obj, path, line, surrogates=True)


def _check_fields(obj: dict[str, Any], path: str, line: int, *, surrogates: bool) -> list[Problem]:
    problems: list[Problem] = []

    def add(message: str, fix: str) -> None:
        problems.append(Problem(path, line, message, fix))

    for key in RESULT_KEYS_REQUIRED:
        if key not in obj:
            add(f"missing required field {key!r}", f"add {key!r}; required fields are {', '.join(RESULT_KEYS_REQUIRED)}")
    for key in obj:
        if key not in RESULT_KEYS_REQUIRED and key not in RESULT_KEYS_OPTIONAL:
            add(f"unknown field {key!r}", f"move it into 'metadata', or check the spelling against {', '.join(RESULT_KEYS_REQUIRED + RESULT_KEYS_OPTIONAL)}")

    if "id" in obj:
        if isinstance(obj["id"], int) and not isinstance(obj["id"], bool):
            add(f"id {obj['id']!r} is a number", "write the id as a string, for example \"42\"")
        elif (reason := slug_problem(obj["id"]) or _line_break_problem(obj["id"])) is not None:
            add(f"invalid id {str(obj['id'])[:80]!r}: {reason}", "use a lowercase slug such as 'q-0042'")
    if "input" in obj:
        problems.extend(_check_input(obj["input"], path, line))
    if "output" in obj:
        if not isinstance(obj["output"], str):
            add(f"'output' must be a string, got {type(obj['output']).__name__}", "write the model's raw output text; use \"\" for an empty output")
        elif len(obj["output"]) > MAX_FIELD_CHARS:
            add(f"'output' has {len(obj['output']):,} characters, over the limit of {MAX_FIELD_CHARS:,}", "truncate the output and say so in metadata")
    if "score" in obj:
        score = obj["score"]
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            add(f"'score' must be a number, got {type(score).__name__} {str(score)[:40]!r}", "write the metric value as a number such as 0 or 1.0")
        elif not math.isfinite(score):
            add(f"'score' is {score}", "write a finite number")
    if "reference" in obj:
        reference = obj["reference"]
        ok = isinstance(reference, str) or (
            isinstance(reference, list) and all(isinstance(item, str) for item in reference)
        )
        if not ok:
            add("'reference' must be a string or a list of strings", "write the gold answer as text, for example \"B\" or [\"4\", \"four\"]")
        elif sum(len(item) for item in ([reference] if isinstance(reference, str) else reference)) > MAX_FIELD_CHARS:
            add(f"'reference' is over {MAX_FIELD_CHARS:,} characters", "shorten the reference")
    if "correct" in obj and not isinstance(obj["correct"], bool):
        add(f"'correct' must be true or false, got {str(obj['correct'])[:40]!r}", "write true or false, or leave it out to use the dataset's threshold")
    if "metadata" in obj and not isinstance(obj["metadata"], dict):
        add(f"'metadata' must be an object, got {type(obj['metadata']).__name__}", "write metadata as a JSON object")
    if surrogates and _unencodable(obj):
        add("a string contains an unpaired UTF-16 surrogate escape such as \\ud800",
            "write the text as valid Unicode; escape sequences must come in surrogate pairs")
    return problems


def check_score_range(obj: dict[str, Any], path: str, line: int, score_range: tuple[float, float] | None) -> list[Problem]:
    """Return a problem when a valid score lies outside the dataset's declared ``score_range``."""
    score = obj.get("score")
    if score_range is None or isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        return []
    low, high = score_range
    if low <= score <= high:
        return []
    return [Problem(path, line, f"score {score!r} is outside the dataset's score_range [{low}, {high}]",
                    "check the metric's scale (for example 0-1 versus 0-100), or fix score_range in the dataset's metadata")]


def declared_score_range(obj: Any) -> tuple[float, float] | None:
    """Return the ``score_range`` of a parsed dataset mapping when it is well formed, else None."""
    if not isinstance(obj, dict):
        return None
    value = obj.get("score_range")
    if not _is_range(value):
        return None
    return float(value[0]), float(value[1])


def _is_range(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(item, (int, float)) and not isinstance(item, bool) and math.isfinite(item) for item in value)
        and value[0] <= value[1]
    )


def placeholder_problems(obj: Any, path: str) -> list[Problem]:
    """Return one problem per metadata value that still holds an ``atlas import`` placeholder."""
    problems: list[Problem] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, str) and value.startswith(PLACEHOLDER_PREFIX):
            hint = value[len(PLACEHOLDER_PREFIX):].lstrip(": ").strip()
            problems.append(Problem(path, None, f"{where} is still a placeholder left by atlas import",
                                    f"replace it: {hint}" if hint else f"replace the {PLACEHOLDER_PREFIX} value"))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}.{key}" if where else str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{where}[{index}]")

    walk(obj, "")
    return problems


def _line_break_problem(value: Any) -> str | None:
    # NOTE: ids.SLUG_PATTERN ends in "$", which also matches before a final "\n"; this guard closes that gap here.
    if isinstance(value, str) and value.endswith("\n"):
        return "an id must not end with a line break"
    return None


def _check_input(value: Any, path: str, line: int) -> list[Problem]:
    if isinstance(value, str):
        if len(value) > MAX_FIELD_CHARS:
            return [Problem(path, line, f"'input' has {len(value):,} characters, over the limit of {MAX_FIELD_CHARS:,}", "shorten the prompt")]
        return []
    fix = "write the prompt as text, or as a list of {\"role\": ..., \"content\": ...} messages"
    if not isinstance(value, list):
        return [Problem(path, line, f"'input' must be a string or a list of messages, got {type(value).__name__}", fix)]
    if len(value) > MAX_MESSAGES:
        return [Problem(path, line, f"'input' has {len(value)} messages, over the limit of {MAX_MESSAGES}", "keep the messages the model saw")]
    for index, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) or not isinstance(message.get("content"), str):
            return [Problem(path, line, f"input message {index} is not an object with string 'role' and 'content'", fix)]
    total = sum(len(message["content"]) for message in value)
    if total > MAX_FIELD_CHARS:
        return [Problem(path, line, f"'input' messages have {total:,} characters, over the limit of {MAX_FIELD_CHARS:,}", "shorten the prompt")]
    return []


def check_dataset_metadata(obj: Any, path: str, expected_id: str) -> list[Problem]:
    """Return the problems of a parsed ``data/datasets/<id>.yaml``."""
    problems = _check_mapping(obj, path, DATASET_KEYS_REQUIRED, DATASET_KEYS_OPTIONAL, expected_id)
    if problems and not isinstance(obj, dict):
        return problems
    placeholders = placeholder_problems(obj, path)
    if placeholders:
        # The other checks would only repeat each placeholder as "invalid value".
        return problems + placeholders
    if "score_range" in obj and not _is_range(obj["score_range"]):
        problems.append(Problem(path, None, f"invalid score_range {str(obj['score_range'])[:60]!r}",
                                "write [lowest, highest] as two finite numbers, for example [0, 1]"))
    if "task_type" in obj and obj["task_type"] not in TASK_TYPES:
        problems.append(Problem(path, None, f"invalid task_type {obj['task_type']!r}", f"use one of {', '.join(TASK_TYPES)}"))
    threshold = obj.get("threshold")
    if "threshold" in obj and (isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold)):
        problems.append(Problem(path, None, f"'threshold' must be a finite number, got {threshold!r}", "an instance is correct when score >= threshold; for 0/1 scores use 1"))
    if "source" in obj:
        problems.extend(_check_source(obj["source"], path, "source"))
    publishing = obj.get("publishing")
    if publishing is not None:
        if not isinstance(publishing, dict):
            problems.append(Problem(path, None, "'publishing' must be a mapping", "write keys text, excerpt_chars, content_warning, reason"))
        else:
            for key in publishing:
                if key not in PUBLISHING_KEYS:
                    problems.append(Problem(path, None, f"unknown publishing key {key!r}", f"use {', '.join(PUBLISHING_KEYS)}"))
            if publishing.get("text", "full") not in ("full", "excerpt", "hidden"):
                problems.append(Problem(path, None, f"invalid publishing.text {publishing.get('text')!r}", "use full, excerpt or hidden"))
            chars = publishing.get("excerpt_chars", 300)
            if isinstance(chars, bool) or not isinstance(chars, int) or chars < 0:
                problems.append(Problem(path, None, f"invalid publishing.excerpt_chars {chars!r}", "use a whole number of characters such as 300"))
    return problems


def check_model_metadata(obj: Any, path: str, expected_id: str) -> list[Problem]:
    """Return the problems of a parsed ``data/models/<id>.yaml``."""
    problems = _check_mapping(obj, path, MODEL_KEYS_REQUIRED, MODEL_KEYS_OPTIONAL, expected_id)
    if problems and not isinstance(obj, dict):
        return problems
    placeholders = placeholder_problems(obj, path)
    if placeholders:
        return problems + placeholders
    sources = obj.get("sources", [])
    if not isinstance(sources, list):
        problems.append(Problem(path, None, "'sources' must be a list", "write a list of {repository, commit, path, url} mappings"))
    else:
        for index, source in enumerate(sources):
            problems.extend(_check_source(source, path, f"sources[{index}]"))
    return problems


def _check_mapping(obj: Any, path: str, required: tuple[str, ...], optional: tuple[str, ...], expected_id: str) -> list[Problem]:
    if not isinstance(obj, dict):
        return [Problem(path, None, f"expected a YAML mapping, got {type(obj).__name__}", f"write the keys {', '.join(required)}")]
    problems = []
    for key in required:
        if key not in obj or obj[key] in (None, ""):
            problems.append(Problem(path, None, f"missing required key {key!r}", f"add {key!r}; required keys are {', '.join(required)}"))
    for key in obj:
        if key not in required and key not in optional:
            problems.append(Problem(path, None, f"unknown key {key!r}", f"check the spelling; allowed keys are {', '.join(required + optional)}"))
    if "id" in obj:
        reason = slug_problem(obj["id"])
        if reason is not None:
            problems.append(Problem(path, None, f"invalid id {str(obj['id'])[:80]!r}: {reason}", "use a lowercase slug such as 'llama-3-70b'"))
        elif obj["id"] != expected_id:
            problems.append(Problem(path, None, f"id {obj['id']!r} does not match the file name {expected_id!r}", "rename the file or change the id"))
    for key in ("name", "description", "metric", "license", "organization", "family", "parameters", "subset", "citation"):
        if key in obj and obj[key] is not None and not isinstance(obj[key], str):
            problems.append(Problem(path, None, f"{key!r} must be text, got {type(obj[key]).__name__}", "quote the value"))
    aliases = obj.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(alias, str) for alias in aliases):
        problems.append(Problem(path, None, "'aliases' must be a list of strings", "write aliases: [name-in-source, ...]"))
    return problems


def _check_source(source: Any, path: str, name: str) -> list[Problem]:
    if not isinstance(source, dict):
        return [Problem(path, None, f"{name!r} must be a mapping", "write {repository: owner/name, commit: abc123}")]
    problems = []
    if not isinstance(source.get("repository"), str) or not source.get("repository"):
        problems.append(Problem(path, None, f"{name}.repository is missing", "name the repository the results came from, such as owner/name"))
    for key in source:
        if key not in SOURCE_KEYS:
            problems.append(Problem(path, None, f"unknown key {name}.{key}", f"use {', '.join(SOURCE_KEYS)}"))
        elif source[key] is not None and not isinstance(source[key], str):
            problems.append(Problem(path, None, f"{name}.{key} must be text", "quote the value"))
    return problems
