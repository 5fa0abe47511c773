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
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

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


@dataclass(frozen=True)
class Vote:
    """One model's normalised answer to one instance, as the suspect-reference check counts it."""

    instance_id: str
    model: str
    answer: str | None  # None when the row states no answer
    correct: bool


def vote_of(row: Row) -> Vote | None:
    """Return the row's vote, or None when its dataset's answers cannot be compared or it has no reference."""
    if row.task_type not in COMPARABLE or not row.reference:
        return None
    return Vote(row.instance_id, row.model, stated_answer(row), row.correct)


def find_suspects(rows: Iterable[Row]) -> list[Diagnosis]:
    """Return one suspect-reference diagnosis per instance whose weighted model consensus contradicts the reference."""
    votes: dict[str, list[Vote]] = defaultdict(list)
    first_rows: dict[str, dict[str, Row]] = defaultdict(dict)
    for row in rows:
        vote = vote_of(row)
        if vote is not None:
            votes[row.dataset].append(vote)
            first_rows[row.dataset].setdefault(row.instance_id, row)
    found: list[Diagnosis] = []
    for dataset, dataset_votes in sorted(votes.items()):
        found.extend(dataset_suspects(dataset, dataset_votes, first_rows[dataset].__getitem__))
    return found


def dataset_suspects(dataset: str, votes: Sequence[Vote], first_row: Callable[[str], Row]) -> list[Diagnosis]:
    """Return the suspect references of one dataset from its models' votes, sorted by instance id.

    ``first_row`` returns the first row of an instance. The check reads only its input, metadata and
    reference (never its output), and only for instances whose vote passes every threshold.
    """
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for vote in votes:
        totals[vote.model][0] += int(vote.correct)
        totals[vote.model][1] += 1
    if not totals:
        return []
    weight = {model: max(right / count, MIN_WEIGHT) for model, (right, count) in totals.items()}
    bar = statistics.median(weight.values())
    strong = {model for model, value in weight.items() if value >= bar}

    by_instance: dict[str, list[Vote]] = defaultdict(list)
    for vote in votes:
        by_instance[vote.instance_id].append(vote)

    found = []
    for instance_id, instance_votes in sorted(by_instance.items()):
        tally: dict[str, list[str]] = defaultdict(list)
        for vote in instance_votes:
            if vote.answer is not None:
                tally[vote.answer].append(vote.model)
        voters = sum(len(models) for models in tally.values())
        if voters < MIN_MODELS or not tally:
            continue
        total_weight = sum(weight[model] for models in tally.values() for model in models)
        agreed, models = max(tally.items(), key=lambda item: sum(weight[model] for model in item[1]))
        share = sum(weight[model] for model in models) / total_weight
        first = first_row(instance_id)
        if agreed == _normal_reference(first) or share < MIN_WEIGHT_SHARE or len(models) < max(MIN_MODELS, voters / 2):
            continue
        strong_voters = [model for answer_models in tally.values() for model in answer_models if model in strong]
        strong_agreeing = [model for model in models if model in strong]
        if len(strong_voters) < MIN_STRONG or len(strong_agreeing) < MIN_STRONG_SHARE * len(strong_voters):
            continue
        if _undecidable_item(first, agreed):
            continue
        reference_text = first.reference[0]
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
                "reference": list(first.reference),
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
