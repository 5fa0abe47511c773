"""Check ``suspect-reference``: most models agree on one answer that differs from the reference.

Per (dataset, instance) each model's answer is its normalised stated final
answer (the reference itself when the row is scored right). Each model's
vote weighs its accuracy on the dataset, so a consensus of strong models
counts more than one of weak models. The finding belongs to the dataset,
not to any model, so its ``model`` is the empty string.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from atlas_builder.diagnose.checks.answers import answer_letter, final_answer
from atlas_builder.diagnose.checks.base import Row
from atlas_builder.diagnose.checks.normalize import normalise_answer, parse_letter
from atlas_builder.records import Diagnosis, Evidence

COMPARABLE = frozenset({"multiple_choice", "short_answer", "math"})
#: The agreed answer needs at least this share of the voting weight (a clear majority)...
MIN_WEIGHT_SHARE = 0.6
#: ... and at least this many models, and at least half of the models that stated an answer. Fewer
#: models (four GPT-3 variants on GSM8K) agree on the same wrong answer too often to mean anything.
MIN_MODELS = 5
#: Weight of a model that answered nothing right, so its vote still counts a little.
MIN_WEIGHT = 0.01


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
                "reference": list(instance_rows[0].reference),
            },
        ))
    return found
