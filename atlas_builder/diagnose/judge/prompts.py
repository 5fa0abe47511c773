"""Prompt templates, answer schema and data fences of the per-failure diagnosis.

Templates are Jinja files in ``prompts/``, named ``<purpose>-v<N>.j2``; each
defines the macros ``system()`` and ``user()``. A change to a template's
wording gets a new file and version, because the version is part of every
stored answer's key: old answers stay valid for the prompt that produced them.
Untrusted text is only ever passed as a template variable, never as template
source, and the template places it between fence lines (``fence_marker``).
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any, Iterable, Mapping

import jinja2
import jsonschema

DIAGNOSE_PROMPT_VERSION = "diagnose-v1"
DIAGNOSE_SCHEMA_NAME = "failure_diagnosis"
MAX_CRITERIA = 12

_CRITERION = {
    "type": "object",
    "additionalProperties": False,
    "required": ["criterion", "met", "evidence"],
    "properties": {
        "criterion": {"type": "string"},
        "met": {"type": "boolean"},
        "evidence": {"type": "string"},
    },
}

#: JSON schema of a diagnosis answer. It uses only keywords that OpenAI's strict
#: structured output accepts (every property required, no extra properties);
#: ``check_diagnosis`` adds the rules that schema cannot state.
DIAGNOSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "criteria", "first_error", "error_title", "error_summary",
        "reference_flag", "ambiguous_flag", "flag_reason",
    ],
    "properties": {
        "criteria": {"type": "array", "minItems": 1, "maxItems": MAX_CRITERIA, "items": _CRITERION},
        "first_error": {
            "type": "object",
            "additionalProperties": False,
            "required": ["criterion", "evidence", "explanation"],
            "properties": {
                "criterion": {"type": "integer"},
                "evidence": {"type": "string"},
                "explanation": {"type": "string"},
            },
        },
        "error_title": {"type": "string"},
        "error_summary": {"type": "string"},
        "reference_flag": {"type": "boolean"},
        "ambiguous_flag": {"type": "boolean"},
        "flag_reason": {"type": "string"},
    },
}

MAX_TITLE_CHARS = 120


class AnswerRejected(ValueError):
    """Raised when a parsed answer breaks the schema or a rule the schema cannot state."""


_VALIDATORS: dict[int, tuple[Mapping[str, Any], jsonschema.Draft202012Validator]] = {}


def _validator(schema: Mapping[str, Any]) -> jsonschema.Draft202012Validator:
    # Keyed by identity (schemas are treated as immutable); the entry keeps the schema alive, so its id
    # cannot be reused by another object.
    entry = _VALIDATORS.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = (schema, jsonschema.Draft202012Validator(schema))
        _VALIDATORS[id(schema)] = entry
    return entry[1]


def validate_schema(answer: Any, schema: Mapping[str, Any]) -> None:
    """Raise ``AnswerRejected`` naming the first schema violation of ``answer``."""
    validator = _validator(schema)
    if validator.is_valid(answer):
        return
    error = jsonschema.exceptions.best_match(validator.iter_errors(answer))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        raise AnswerRejected(f"answer does not match the schema at {where}: {error.message[:300]}")


def check_diagnosis(answer: dict[str, Any]) -> None:
    """Reject a schema-valid diagnosis whose fields contradict each other or are empty."""
    criteria = answer["criteria"]
    index = answer["first_error"]["criterion"]
    if not 1 <= index <= len(criteria):
        raise AnswerRejected(f"first_error.criterion is {index}, but there are {len(criteria)} criteria")
    if criteria[index - 1]["met"]:
        raise AnswerRejected(f"first_error.criterion {index} points to a criterion marked as met")
    title = answer["error_title"].strip()
    if not title:
        raise AnswerRejected("error_title is empty")
    if len(title) > MAX_TITLE_CHARS:
        raise AnswerRejected(f"error_title has {len(title)} characters, over the limit of {MAX_TITLE_CHARS}")
    if not answer["error_summary"].strip():
        raise AnswerRejected("error_summary is empty")


def fence_marker(texts: Iterable[str]) -> str:
    """Return a boundary marker that none of ``texts`` contains.

    The marker is derived from a hash of the texts, so the same data always
    gets the same marker (and the same request key), while a text cannot
    contain the marker of a request it is part of except by a hash collision.
    The containment check makes that certain rather than likely.
    """
    texts = list(texts)
    digest = hashlib.sha256("\x00".join(texts).encode("utf-8"))
    for attempt in range(1000):
        digest.update(attempt.to_bytes(4, "big"))
        marker = f"DATA-{digest.hexdigest()[:20]}"
        if not any(marker in text for text in texts):
            return marker
    raise RuntimeError("could not find a fence marker absent from the texts")  # needs 1000 sha256 collisions


@functools.lru_cache(maxsize=None)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("atlas_builder.diagnose.judge", "prompts"),
        autoescape=False,  # plain-text prompts; untrusted text is fenced, not escaped
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )


def render_messages(prompt_version: str, variables: Mapping[str, Any]) -> list[dict[str, str]]:
    """Render ``prompts/<prompt_version>.j2`` into a system and a user message."""
    try:
        template = _environment().get_template(f"{prompt_version}.j2")
    except jinja2.TemplateNotFound:
        raise ValueError(f"unknown prompt version {prompt_version!r}: no prompts/{prompt_version}.j2 in the package") from None
    module = template.make_module(dict(variables))
    return [
        {"role": "system", "content": str(module.system()).strip()},
        {"role": "user", "content": str(module.user()).strip()},
    ]


def diagnosis_messages(
    *,
    task_type: str,
    dataset_name: str,
    input_text: str,
    reference: Iterable[str],
    output: str,
    peer_output: str | None,
    findings: Iterable[Mapping[str, str]] = (),
    prompt_version: str = DIAGNOSE_PROMPT_VERSION,
) -> list[dict[str, str]]:
    """Render the diagnosis request for one failure, with every untrusted text fenced."""
    reference = [str(item) for item in reference]
    findings = [{"title": str(item["title"]), "summary": str(item["summary"])} for item in findings]
    untrusted = [input_text, output, *reference, dataset_name]
    untrusted += [text for finding in findings for text in finding.values()]
    if peer_output is not None:
        untrusted.append(peer_output)
    variables = {
        "task_type": task_type,
        "dataset_name": dataset_name,
        "fence": fence_marker(untrusted),
        "input": input_text,
        "reference": reference,
        "peer_output": peer_output,
        "output": output,
        "findings": findings,
    }
    return render_messages(prompt_version, variables)
