"""Check ``suspect-reference``: most models agree on one answer that differs from the reference.

Per (dataset, instance) each model's answer is its normalised stated final
answer (the reference itself when the row is scored right). Each model's
vote weighs its accuracy on the dataset, so a consensus of strong models
counts more than one of weak models. The finding belongs to the dataset,
not to any model, so its ``model`` is the empty string.

Two rules keep the check from reporting what a benchmark measures:

- **Undecidable options.** An item whose reference, or whose agreed answer,
  is an option such as "Unknown" or "Cannot be determined" is skipped. Bias
  benchmarks (BBQ) put that option in every ambiguous passage; when many
  models agree on a person there instead, that is the stereotype the
  benchmark counts, not a wrong reference. A dataset whose items never have
  such an option is unaffected.
- **Stronger models.** The models at or above the dataset's median accuracy
  must mostly agree too (at least MIN_STRONG of them answered, and
  MIN_STRONG_SHARE of those gave the agreed answer), so a block of weak
  models sharing one mistake is not enough.

With fewer than MIN_MODELS models on a dataset (GSM8K has four) the check
never fires there.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from typing import Iterable

from atlas_builder.diagnose.checks.answers import answer_letter, final_answer, option_texts
from atlas_builder.diagnose.checks.base import Row
from atlas_builder.diagnose.checks.normalize import normalise_answer, parse_letter
from atlas_builder.records import Diagnosis, Evidence

COMPARABLE = frozenset({"multiple_choice", "short_answer", "math"})
#: The agreed answer needs at least this share of the voting weight (a clear majority)...
MIN_WEIGHT_SHARE = 0.7
#: ... and at least this many models, and at least half of the models that stated an answer. Fewer
#: models (four GPT-3 variants on GSM8K) agree on the same wrong answer too often to mean anything.
MIN_MODELS = 5
#: Weight of a model that answered nothing right, so its vote still counts a little.
MIN_WEIGHT = 0.01
#: At least this many of the stronger half of the models must state an answer...
MIN_STRONG = 3
#: ... and at least this share of them must give the agreed answer.
MIN_STRONG_SHARE = 2 / 3
#: Option texts that say the item cannot be decided from what is given.
UNDECIDABLE = re.compile(
    r"^(?:unknown|not known|undetermined|unanswerable|not answerable|cannot answer|can'?t answer|"
    r"cannot be (?:determined|answered|known)|can'?t be (?:determined|answered|known)|cannot tell|can'?t tell|"
    r"not enough (?:info|information)|insufficient information|undecidable)\W*$",
    re.IGNORECASE,
)


def undecidable(text: str) -> bool:
    """Return whether an option text says the item cannot be decided ("Unknown", "Cannot be determined")."""
    return bool(UNDECIDABLE.match(" ".join(text.split())))


def stated_answer(row: Row) -> str | None:
    """Return the normalised answer a row states, the reference when it is scored right, or None."""
    if row.correct:
        return _normal_reference(row)
    if row.task_type == "multiple_choice":
        answer = final_answer(row.output)
        letter = answer_letter(answer) if answer is not None else None
        extracted = row.metadata.get("extracted")
        if letter is None and isinstance(extracted, str):
            letter = parse_letter(extracted)
        return letter
    answer = final_answer(row.output)
    if answer is None:
        return None
    normal = normalise_answer(answer.text, row.task_type)
    return normal or None


def _normal_reference(row: Row) -> str | None:
    if not row.reference:
        return None
    return normalise_answer(row.reference[0], row.task_type) or None


def find_suspects(rows: Iterable[Row]) -> list[Diagnosis]:
    """Return one suspect-reference diagnosis per instance whose weighted model consensus contradicts the reference."""
    by_dataset: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if row.task_type in COMPARABLE and row.reference:
            by_dataset[row.dataset].append(row)
    found: list[Diagnosis] = []
    for dataset, dataset_rows in sorted(by_dataset.items()):
        found.extend(_dataset_suspects(dataset, dataset_rows))
    return found


def _dataset_suspects(dataset: str, rows: list[Row]) -> list[Diagnosis]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        totals[row.model][0] += int(row.correct)
        totals[row.model][1] += 1
    weight = {model: max(right / count, MIN_WEIGHT) for model, (right, count) in totals.items()}
    bar = statistics.median(weight.values())
    strong = {model for model, value in weight.items() if value >= bar}

    by_instance: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_instance[row.instance_id].append(row)

    found = []
    for instance_id, instance_rows in sorted(by_instance.items()):
        reference = _normal_reference(instance_rows[0])
        votes: dict[str, list[str]] = defaultdict(list)
        for row in instance_rows:
            answer = stated_answer(row)
            if answer is not None:
                votes[answer].append(row.model)
        voters = sum(len(models) for models in votes.values())
        if voters < MIN_MODELS or not votes:
            continue
        total_weight = sum(weight[model] for models in votes.values() for model in models)
        agreed, models = max(votes.items(), key=lambda item: sum(weight[model] for model in item[1]))
        share = sum(weight[model] for model in models) / total_weight
        if agreed == reference or share < MIN_WEIGHT_SHARE or len(models) < max(MIN_MODELS, voters / 2):
            continue
        strong_voters = [model for answer_models in votes.values() for model in answer_models if model in strong]
        strong_agreeing = [model for model in models if model in strong]
        if len(strong_voters) < MIN_STRONG or len(strong_agreeing) < MIN_STRONG_SHARE * len(strong_voters):
            continue
        if _undecidable_item(instance_rows[0], agreed):
            continue
        reference_text = instance_rows[0].reference[0]
        found.append(Diagnosis(
            dataset=dataset,
            model="",
            instance_id=instance_id,
            diagnoser="check:suspect-reference",
            kind="check",
            title="Reference may be wrong",
            summary=(
                f"{len(models)} of {voters} models, with {share:.0%} of the accuracy-weighted vote, "
                f"answer “{agreed}” where the reference is “{reference_text}”."
            ),
            category="suspect-reference",
            explains_fully=False,
            evidence=(Evidence(field="reference", start=0, end=len(reference_text), text=reference_text),),
            details={
                "agreed_answer": agreed,
                "weighted_share": round(share, 3),
                "models": sorted(models),
                "voters": voters,
                "strong_agreeing": len(strong_agreeing),
                "strong_voters": len(strong_voters),
                "reference": list(instance_rows[0].reference),
            },
        ))
    return found


def _undecidable_item(row: Row, agreed: str) -> bool:
    """Return whether the reference or the agreed answer of this item is an undecidable option."""
    texts = list(row.reference)
    if row.task_type == "multiple_choice":
        options = option_texts(row.metadata, row.input)
        texts.append(options.get(agreed, ""))
        texts.extend(options.get(letter, "") for letter in row.reference if len(letter) == 1)
    else:
        texts.append(agreed)
    return any(undecidable(text) for text in texts if text)
