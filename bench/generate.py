"""Generate a synthetic atlas at paper scale (or larger) for build benchmarks.

The output is in the atlas format (``datasets/<id>.yaml``, ``models/<id>.yaml``,
``results/<dataset>/<model>.jsonl``) plus a taxonomy and stored judge answers.
Every name and description says that the data is synthetic. The same seed and
options give byte-identical files whatever the number of worker processes,
because every random draw comes from a generator seeded by
``(seed, purpose, dataset index, model index)``.

Scale 1 is 83 models x 35 datasets with 12,250 instances per model, so
1,016,750 result rows. ``--scale N`` multiplies the number of models (the
default ``--axis models``) or of datasets. Models are the default axis because
every model adds a page, one result file per dataset and one signature row per
dataset and category, while a dataset adds instances that every model shares.

Run ``python -m bench.generate --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

logger = logging.getLogger("bench.generate")

REPO_ROOT = Path(__file__).resolve().parent.parent
MARKER_FILE = "SYNTHETIC-ATLAS.json"
GENERATOR_VERSION = 1

BASE_MODELS = 83
BASE_DATASETS = 35
INSTANCES_PER_MODEL = 12_250  # 35 datasets x 350 on average; x 83 models = 1,016,750 rows

JUDGE_MODEL = "synthetic-judge-1"
JUDGE_PROMPT_VERSION = "synthetic-v1"
JUDGE_SHARE = 0.10  # share of content failures (not empty, refused or truncated) with a stored judge answer

# Purposes mixed into every seed, so that two kinds of draws never share a stream.
DATASET_SPEC, MODEL_SPEC, CORPUS, INSTANCES, PAIR, TAXONOMY = range(6)

SYNTHETIC_SOURCE = {"repository": "synthetic/erroratlas-bench", "path": "bench/generate.py"}
SYNTHETIC_LICENSE = "CC0-1.0"

# Task types with the weight each gets when a dataset's task type is drawn.
TASK_WEIGHTS = {
    "multiple_choice": 0.30,
    "short_answer": 0.18,
    "math": 0.20,
    "open_ended": 0.10,
    "safety": 0.07,
    "code": 0.09,
    "tool_use": 0.06,
}
GRADED_TASKS = ("open_ended", "safety")  # scores in [0, 1] with a threshold; the others score 0 or 1

# Median character lengths of inputs and outputs per task type (inputs include any options).
INPUT_MEDIAN = {"multiple_choice": 700, "short_answer": 450, "math": 420, "open_ended": 1100,
                "safety": 380, "code": 1300, "tool_use": 1600}
OUTPUT_MEDIAN = {"multiple_choice": 900, "short_answer": 600, "math": 950, "open_ended": 1500,
                 "safety": 700, "code": 1200, "tool_use": 800}

# A fixed vocabulary: common words, domain words, and a few tokens that need escaping
# in JSON, HTML or Markdown, so that rendering code meets them at realistic rates.
COMMON_WORDS = """
the of and to in is that for it as with was on be by this are from or at which an have not were but
has can its all their more one there been if would so also other some when into than only these may
we then them two first time such what any each most over after where new between both under same
value number step answer question result first second third because therefore thus given since
hence consider assume suppose note recall follows means gives equals total each per rate ratio sum
difference product part whole half quarter three four five six seven eight nine ten hundred thousand
""".split()
DOMAIN_WORDS = """
system model function variable equation integer fraction probability distribution sample mean median
variance matrix vector graph node edge tree path cycle theorem lemma proof premise conclusion argument
evidence source author claim context passage paragraph sentence option choice statement hypothesis
experiment measurement energy force mass velocity acceleration pressure temperature molecule atom
protein cell enzyme membrane species population market price demand supply contract statute court
patient symptom diagnosis treatment dose algorithm loop array string index pointer query table column
record schema request response server client token parameter argument tool call result error warning
country river mountain city century empire treaty election policy budget revenue cost interest loan
""".split()
MARKUP_TOKENS = """
"quoted" 'single' <b>bold</b> <script>x</script> **strong** _em_ `code` {{ }} {% %} | # -> => <= >=
\\n \\t C:\\path a\\b x_1 y^2 $x$ $$ [link](x) ../ &amp; &lt;
""".split()
NON_ASCII_TOKENS = "naïve café → ≤ ≥ ∑ π 数学 答案 🙂".split()
VOCABULARY = np.array(COMMON_WORDS + DOMAIN_WORDS + MARKUP_TOKENS + NON_ASCII_TOKENS, dtype=object)
CAPITALISED = np.array([word[:1].upper() + word[1:] for word in VOCABULARY], dtype=object)


def _vocabulary_weights() -> np.ndarray:
    """Zipf-like common words, evenly drawn domain words, 1 in 125 tokens markup, 1 in 5,000 non-ASCII.

    Non-ASCII tokens stay rare because one of them makes CPython store the whole
    string with 2 or 4 bytes per character, which would inflate memory figures.
    """
    common, domain = len(COMMON_WORDS), len(DOMAIN_WORDS)
    zipf = 1.0 / np.arange(1, common + 1)
    weights = np.concatenate([zipf / zipf.sum() * 0.6118, np.full(domain, 0.38 / domain),
                              np.full(len(MARKUP_TOKENS), 0.008 / len(MARKUP_TOKENS)),
                              np.full(len(NON_ASCII_TOKENS), 0.0002 / len(NON_ASCII_TOKENS))])
    return weights / weights.sum()


VOCABULARY_WEIGHTS = _vocabulary_weights()

REFUSALS = (
    "I'm sorry, but I can't help with that request.",
    "I cannot assist with this. If you have another question, I am happy to help.",
    "As an AI language model, I am not able to provide that information.",
    "I won't be able to answer this question as asked.",
)
SAFE_COMPLETIONS = (
    "I can't help with that, but here is some general safety information instead. ",
    "That request could cause harm, so I will not give instructions. ",
)
SHORT_ANSWERS = np.array(DOMAIN_WORDS, dtype=object)
LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class Config:
    """Everything that decides the generated bytes."""

    seed: int = 0
    scale: int = 1
    axis: str = "models"  # "models" or "datasets": which count ``scale`` multiplies
    instances_factor: float = 1.0  # multiplies every dataset's instance count
    base_models: int = BASE_MODELS  # counts at scale 1; tests shrink them
    base_datasets: int = BASE_DATASETS
    instances_per_model: int = INSTANCES_PER_MODEL
    corpus_words: int = 300_000  # length of each dataset's random text that inputs and outputs are cut from

    @property
    def models(self) -> int:
        return self.base_models * (self.scale if self.axis == "models" else 1)

    @property
    def datasets(self) -> int:
        return self.base_datasets * (self.scale if self.axis == "datasets" else 1)


@dataclass(frozen=True)
class DatasetSpec:
    """Drawn properties of one synthetic dataset."""

    index: int
    id: str
    task_type: str
    metric: str
    threshold: float
    graded: bool
    explicit_correct: bool  # write the ``correct`` field instead of relying on the threshold
    chat: bool  # inputs as a list of chat messages
    options: int  # answer options for multiple choice, else 0
    size: int
    difficulty: float
    input_median: float
    output_median: float
    publishing: str  # full, excerpt or hidden


@dataclass(frozen=True)
class ModelSpec:
    """Drawn properties of one synthetic model."""

    index: int
    id: str
    ability: float
    verbosity: float
    empty_rate: float  # share of failures with an empty output
    refusal_rate: float
    truncation_rate: float
    max_chars: int  # outputs longer than this are cut (a token limit)
    organization: int
    family: int
    parameters: int  # billions


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(part) for part in key]))


def model_id(index: int) -> str:
    return f"synthetic-model-{index + 1:03d}"


def dataset_id(index: int) -> str:
    return f"synthetic-dataset-{index + 1:03d}"


# --- drawn specifications ---------------------------------------------------


def dataset_sizes(config: Config) -> list[int]:
    """Draw instance counts: skewed across datasets, 12,250 per model in total at factor 1.

    No dataset gets less than a fifth of the mean size. Dataset ``i`` gets the
    size of base dataset ``i % 35``, so ``--axis datasets`` repeats the pattern.
    """
    rng = _rng(config.seed, DATASET_SPEC, 10_000)
    weights = rng.lognormal(0.0, 0.6, config.base_datasets)
    target = config.instances_per_model * config.instances_factor
    floor = max(1, round(0.2 * target / config.base_datasets))
    sizes = np.maximum(np.round(weights / weights.sum() * target), floor).astype(int)
    sizes[int(np.argmax(sizes))] += int(round(target)) - int(sizes.sum())  # the largest absorbs rounding
    return [int(sizes[index % config.base_datasets]) for index in range(config.datasets)]


def dataset_spec(config: Config, index: int, size: int) -> DatasetSpec:
    rng = _rng(config.seed, DATASET_SPEC, index)
    tasks = list(TASK_WEIGHTS)
    task = tasks[int(rng.choice(len(tasks), p=np.array(list(TASK_WEIGHTS.values()))))]
    graded = task in GRADED_TASKS
    threshold = float(rng.choice([0.5, 0.7, 0.8])) if graded else 1.0
    metric = {"open_ended": "judge_score", "safety": "safety_score", "code": "pass_at_1",
              "tool_use": "task_success"}.get(task, "exact_match")
    publishing = "full"
    roll = rng.random()
    if task == "safety" or roll < 0.08:
        publishing = "excerpt"
    if roll > 0.97:
        publishing = "hidden"
    long_context = rng.random() < 0.12  # a few datasets with inputs of several thousand characters
    return DatasetSpec(
        index=index,
        id=dataset_id(index),
        task_type=task,
        metric=metric,
        threshold=threshold,
        graded=graded,
        explicit_correct=bool(rng.random() < 0.35),
        chat=bool(rng.random() < 0.35),
        options=int(rng.choice([4, 10])) if task == "multiple_choice" else 0,
        size=size,
        difficulty=float(rng.normal(0.0, 0.9)),
        input_median=INPUT_MEDIAN[task] * (4.0 if long_context else float(rng.uniform(0.7, 1.4))),
        output_median=OUTPUT_MEDIAN[task] * float(rng.uniform(0.7, 1.3)),
        publishing=publishing,
    )


def model_spec(config: Config, index: int) -> ModelSpec:
    rng = _rng(config.seed, MODEL_SPEC, index)
    weak = rng.random()
    return ModelSpec(
        index=index,
        id=model_id(index),
        ability=float(rng.normal(0.3, 1.0)),
        verbosity=float(rng.lognormal(0.0, 0.3)),
        empty_rate=float(rng.uniform(0.0, 0.04) if weak < 0.8 else rng.uniform(0.05, 0.15)),
        refusal_rate=float(rng.uniform(0.0, 0.05)),
        truncation_rate=float(rng.uniform(0.0, 0.06)),
        max_chars=int(rng.choice([2500, 4000, 6000, 8000])),
        organization=int(rng.integers(1, 13)),
        family=int(rng.integers(1, 25)),
        parameters=int(rng.choice([1, 3, 7, 8, 13, 34, 70, 180, 405])),
    )


def all_specs(config: Config) -> tuple[list[DatasetSpec], list[ModelSpec]]:
    sizes = dataset_sizes(config)
    datasets = [dataset_spec(config, index, sizes[index]) for index in range(config.datasets)]
    models = [model_spec(config, index) for index in range(config.models)]
    return datasets, models


# --- metadata files ---------------------------------------------------------


def dataset_metadata(spec: DatasetSpec) -> dict[str, Any]:
    number = spec.index + 1
    publishing: dict[str, Any] = {"text": spec.publishing}
    if spec.publishing == "excerpt":
        publishing["excerpt_chars"] = 300
    if spec.publishing != "full":
        publishing["reason"] = "Synthetic benchmark data: the text rule only exercises the excerpt and hidden paths."
    if spec.task_type == "safety":
        publishing["content_warning"] = "Synthetic stand-in for harmful prompts; contains no real harmful text."
    return {
        "id": spec.id,
        "name": f"Synthetic Dataset {number:03d}",
        "description": (f"Synthetic {spec.task_type.replace('_', ' ')} dataset generated by bench/generate.py "
                        "for build benchmarks. It is not real evaluation data."),
        "task_type": spec.task_type,
        "metric": spec.metric,
        "threshold": spec.threshold,
        "score_range": [0.0, 1.0],
        "source": dict(SYNTHETIC_SOURCE),
        "license": SYNTHETIC_LICENSE,
        "aliases": [f"Synthetic-Dataset-{number:03d}"],
        "publishing": publishing,
        "subset": f"All {spec.size} synthetic instances.",
        "citation": "Synthetic data; nothing to cite.",
    }


def model_metadata(spec: ModelSpec) -> dict[str, Any]:
    number = spec.index + 1
    return {
        "id": spec.id,
        "name": f"Synthetic Model {number:03d}",
        "organization": f"Synthetic Organization {spec.organization:02d}",
        "family": f"synthetic-family-{spec.family:02d}",
        "parameters": f"{spec.parameters}B",
        "aliases": [f"Synthetic-Model-{number:03d}"],
        "sources": [dict(SYNTHETIC_SOURCE)],
        "license": SYNTHETIC_LICENSE,
        "description": "Synthetic model generated by bench/generate.py for build benchmarks. It is not a real model.",
    }


def dump_yaml(obj: dict[str, Any]) -> bytes:
    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=100).encode("utf-8")


# --- text -------------------------------------------------------------------


class Corpus:
    """A long random text from the fixed vocabulary; texts are slices of it that start and end at word boundaries."""

    def __init__(self, rng: np.random.Generator, words: int = 300_000):
        indices = rng.choice(len(VOCABULARY), size=words, p=VOCABULARY_WEIGHTS)
        sentence_end = rng.random(words) < 1 / 14
        paragraph_end = sentence_end & (rng.random(words) < 0.2)
        capital = np.roll(sentence_end, 1)
        capital[0] = True
        tokens = np.where(capital, CAPITALISED[indices], VOCABULARY[indices])
        separators = np.where(paragraph_end, ".\n\n", np.where(sentence_end, ". ", " ")).astype(object)
        pieces = np.empty(2 * words, dtype=object)
        pieces[0::2] = tokens
        pieces[1::2] = separators
        self.text = "".join(pieces.tolist())
        lengths = np.fromiter((len(piece) for piece in pieces.tolist()), dtype=np.int64, count=2 * words)
        self.word_starts = np.concatenate([[0], np.cumsum(lengths)])[0::2][:-1]

    def slices(self, rng: np.random.Generator, lengths: np.ndarray) -> list[str]:
        """Return one text per entry of ``lengths`` (characters, rounded to whole words)."""
        limit = len(self.text) - int(lengths.max(initial=0)) - 100
        usable = int(np.searchsorted(self.word_starts, max(limit, 1)))
        starts = self.word_starts[rng.integers(0, max(usable, 1), size=len(lengths))]
        ends = self.word_starts[np.minimum(np.searchsorted(self.word_starts, starts + lengths),
                                           len(self.word_starts) - 1)]
        text = self.text
        return [text[start:end].rstrip() for start, end in zip(starts.tolist(), ends.tolist())]


def corpus_for(config: Config, dataset_index: int) -> Corpus:
    return Corpus(_rng(config.seed, CORPUS, dataset_index), config.corpus_words)


def _lognormal_lengths(rng: np.random.Generator, median: float, sigma: float, count: int,
                       low: int, high: int) -> np.ndarray:
    return np.clip(rng.lognormal(math.log(median), sigma, count), low, high).astype(np.int64)


@dataclass
class Instances:
    """The instances of one dataset, shared by every model: ids, inputs as JSON, answers and difficulty."""

    ids: list[str]
    input_json: list[str]  # the ``input`` value already encoded as JSON
    answers: list[str]  # the correct final answer
    reference_json: list[str | None]  # the ``reference`` value encoded as JSON, or None when omitted
    difficulty: np.ndarray
    wrong_answers: list[list[str]]  # candidate wrong final answers


def make_instances(config: Config, spec: DatasetSpec, corpus: Corpus) -> Instances:
    rng = _rng(config.seed, INSTANCES, spec.index)
    count = spec.size
    ids = [f"q-{number:05d}" for number in range(1, count + 1)]
    lengths = _lognormal_lengths(rng, spec.input_median, 0.55, count, 150, 12_000)
    bodies = corpus.slices(rng, lengths)
    difficulty = rng.normal(0.0, 1.2, count)
    inputs: list[str] = []
    answers: list[str] = []
    wrong: list[list[str]] = []
    references: list[str | None] = []
    if spec.options:
        option_texts = corpus.slices(rng, rng.integers(8, 70, count * spec.options))
        correct_letters = rng.integers(0, spec.options, count)
        for number in range(count):
            options = option_texts[number * spec.options:(number + 1) * spec.options]
            listed = "\n".join(f"{LETTERS[k]}. {text}" for k, text in enumerate(options))
            inputs.append(f"Question: {bodies[number]}\nOptions:\n{listed}\nAnswer: Let's think step by step.")
            letter = LETTERS[correct_letters[number]]
            answers.append(f"({letter})")
            wrong.append([f"({other})" for other in LETTERS[:spec.options] if other != letter])
            references.append(letter)
    else:
        numbers = rng.integers(2, 100_000, count)
        words = SHORT_ANSWERS[rng.integers(0, len(SHORT_ANSWERS), count)]
        for number in range(count):
            body = bodies[number]
            if spec.task_type == "math":
                answer = str(int(numbers[number]))
                inputs.append(f"Problem: {body}\nGive the final number.")
                wrong.append([str(int(numbers[number]) + delta) for delta in (-10, -1, 1, 2, 100)])
                references.append(answer)
            elif spec.task_type == "short_answer":
                answer = str(words[number])
                inputs.append(f"Read the passage and answer in one word.\n\n{body}\n\nQuestion: which term fits?")
                wrong.append([str(other) for other in SHORT_ANSWERS[:6] if other != answer])
                references.append([answer, answer.capitalize()])
            elif spec.task_type == "code":
                answer = f"def solve_{number}(x):\n    return x * {int(numbers[number]) % 97} + 1\n"
                inputs.append(f"Write a Python function.\n\n{body}\n\n```python\ndef solve_{number}(x):\n    ...\n```")
                wrong.append([answer.replace("+ 1", "- 1"), answer.replace("x *", "x +")])
                references.append(answer)
            elif spec.task_type == "tool_use":
                answer = f'lookup(query="{words[number]}", limit={int(numbers[number]) % 20 + 1})'
                inputs.append(f"Tools: lookup(query, limit), compute(expression).\n\n{body}\n\nCall the right tool.")
                wrong.append([f'compute(expression="{words[number]}")', "lookup()"])
                references.append(answer)
            else:  # open_ended and safety: graded by a score, open_ended keeps a reference answer
                answer = ""
                inputs.append(body)
                wrong.append([""])
                references.append(body[: len(body) // 2] if spec.task_type == "open_ended" and number % 3 else None)
            answers.append(answer)
    input_json: list[str] = []
    system = f"You are a synthetic assistant answering items of {spec.id}."
    for text in inputs:
        value: Any = [{"role": "system", "content": system}, {"role": "user", "content": text}] if spec.chat else text
        input_json.append(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    reference_json = [None if ref is None else json.dumps(ref, ensure_ascii=False, separators=(",", ":"))
                      for ref in references]
    return Instances(ids, input_json, answers, reference_json, difficulty, wrong)


# --- result rows ------------------------------------------------------------


@dataclass
class PairOutput:
    """The bytes of one result file and the judge answers of one (dataset, model) pair."""

    results: bytes
    judge: bytes
    rows: int
    failures: int
    judged: int


def make_pair(config: Config, dataset: DatasetSpec, model: ModelSpec, corpus: Corpus, instances: Instances,
              leaf_categories: list[str], category_weights: np.ndarray) -> PairOutput:
    """Generate one result file: which instances fail, how, the outputs, scores and judge answers."""
    rng = _rng(config.seed, PAIR, dataset.index, model.index)
    count = dataset.size
    logit = 1.7 * (model.ability - dataset.difficulty - instances.difficulty) + 0.4
    correct = rng.random(count) < 1.0 / (1.0 + np.exp(-logit))

    mode_draw = rng.random(count)
    empty = ~correct & (mode_draw < model.empty_rate)
    refused = ~correct & ~empty & (mode_draw < model.empty_rate + model.refusal_rate) & (dataset.task_type != "safety")
    truncated = ~correct & ~empty & ~refused & (
        mode_draw < model.empty_rate + model.refusal_rate + model.truncation_rate)
    lengths = _lognormal_lengths(rng, dataset.output_median * model.verbosity, 0.45, count, 40, 16_000)
    lengths = np.where(truncated, model.max_chars + 200, np.minimum(lengths, model.max_chars - 60))
    reasoning = corpus.slices(rng, lengths)
    picks = rng.integers(0, 1 << 30, count)
    score_draw = rng.random(count)
    judged = ~correct & ~empty & ~refused & ~truncated & (rng.random(count) < JUDGE_SHARE)
    categories = rng.choice(len(leaf_categories), size=count, p=category_weights)

    lines: list[str] = []
    judge_lines: list[str] = []
    graded = dataset.graded
    threshold = dataset.threshold
    for row in range(count):
        pick = int(picks[row])
        if empty[row]:
            output = ""
        elif refused[row]:
            output = REFUSALS[pick % len(REFUSALS)]
        elif truncated[row]:
            output = "Let's think step by step. " + reasoning[row][: model.max_chars - 26]
        elif dataset.task_type == "safety":
            prefix = SAFE_COMPLETIONS[pick % len(SAFE_COMPLETIONS)] if correct[row] else "Sure, here is how. "
            output = prefix + reasoning[row]
        elif dataset.task_type in ("open_ended",):
            output = reasoning[row]
        else:
            if correct[row]:
                answer = instances.answers[row]
            else:
                candidates = instances.wrong_answers[row]
                answer = candidates[pick % len(candidates)]
            if dataset.task_type == "code":
                output = f"{reasoning[row]}\n\n```python\n{answer}```"
            else:
                output = f"Let's think step by step. {reasoning[row]}\n\nSo the answer is {answer}."
        if graded:
            draw = float(score_draw[row])
            value = threshold + (1.0 - threshold) * draw if correct[row] else threshold * draw
            score = math.floor(value * 1000) / 1000
            score_text = repr(score)
        else:
            score_text = "1" if correct[row] else "0"
        finish = "length" if truncated[row] else "stop"
        parts = [f'{{"id":"{instances.ids[row]}","input":{instances.input_json[row]},',
                 f'"output":{json.dumps(output, ensure_ascii=False)},"score":{score_text}']
        if instances.reference_json[row] is not None:
            parts.append(f',"reference":{instances.reference_json[row]}')
        if dataset.explicit_correct:
            parts.append(',"correct":true' if correct[row] else ',"correct":false')
        parts.append(f',"metadata":{{"synthetic":true,"finish_reason":"{finish}","output_chars":{len(output)}}}}}')
        lines.append("".join(parts))
        if judged[row]:
            judge_lines.append(judge_line(dataset, model, instances.ids[row], leaf_categories[categories[row]],
                                          reasoning[row], pick))
    results = ("\n".join(lines) + "\n").encode("utf-8")
    judge = ("\n".join(judge_lines) + "\n").encode("utf-8") if judge_lines else b""
    return PairOutput(results, judge, count, int((~correct).sum()), len(judge_lines))


# --- judge answers and taxonomy (formats to align with the real stores) ----


def judge_line(dataset: DatasetSpec, model: ModelSpec, instance_id: str, category: str, reasoning: str,
               pick: int) -> str:
    """Encode one stored judge answer as a JSON line."""
    # NOTE: this record shape is a stand-in until the judge store's format lands in
    # atlas_builder/diagnose/judge/; align the fields and the file layout with it then.
    words = reasoning.split()
    title_words = words[pick % max(len(words) - 6, 1):][:6] or ["synthetic", "diagnosis"]
    record = {
        "dataset": dataset.id,
        "model": model.id,
        "instance_id": instance_id,
        "judge_model": JUDGE_MODEL,
        "prompt_version": JUDGE_PROMPT_VERSION,
        "title": "Synthetic diagnosis: " + " ".join(title_words),
        "summary": "Synthetic judge summary. " + reasoning[:240].rstrip(),
        "category": category,
    }
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def judge_path(out_dir: Path, dataset: str, model: str) -> Path:
    return out_dir / "judge" / dataset / f"{model}.jsonl"


# Non-content categories with the ids the deterministic checks and the build assign.
# NOTE: these ids copy the seed taxonomy in data/taxonomy/v1.yaml; if the checks add or rename
# a category, add it here too or the synthetic build meets an unknown category id.
MECHANICAL_CATEGORIES = (
    ("output-mechanics", None, "mechanical"),
    ("empty-output", "output-mechanics", "mechanical"),
    ("prompt-echo", "output-mechanics", "mechanical"),
    ("degenerate-repetition", "output-mechanics", "mechanical"),
    ("truncated-output", "output-mechanics", "mechanical"),
    ("refusal", "output-mechanics", "mechanical"),
    ("answer-extraction-failure", "output-mechanics", "mechanical"),
    ("format-violation", "output-mechanics", "mechanical"),
    ("language-mismatch", "output-mechanics", "mechanical"),
    ("arithmetic-slip", None, "mechanical"),
    ("suspect-reference", None, "special"),
    ("hard-to-analyze", None, "special"),
    ("other", None, "special"),
)
CONTENT_TOP_CATEGORIES = 22  # plus output-mechanics, suspect-reference, hard-to-analyze and other: 26 top categories


def taxonomy_categories(config: Config) -> list[dict[str, Any]]:
    """Draw the synthetic taxonomy: 22 content categories with 2-5 subcategories each, plus the mechanical ones."""
    rng = _rng(config.seed, TAXONOMY, 0)
    categories: list[dict[str, Any]] = []
    for top in range(1, CONTENT_TOP_CATEGORIES + 1):
        top_id = f"synthetic-category-{top:02d}"
        categories.append({"id": top_id, "name": f"Synthetic Category {top:02d}",
                           "definition": f"Synthetic top-level error category {top:02d} for build benchmarks.",
                           "parent": None, "kind": "content", "published_share": None, "name_status": "ours"})
        for sub in range(1, int(rng.integers(2, 6)) + 1):
            categories.append({"id": f"{top_id}-{sub:02d}", "name": f"Synthetic Subcategory {top:02d}.{sub:02d}",
                               "definition": f"Synthetic subcategory {sub:02d} of category {top:02d}.",
                               "parent": top_id, "kind": "content", "published_share": None, "name_status": "ours"})
    for category_id, parent, kind in MECHANICAL_CATEGORIES:
        categories.append({"id": category_id, "name": "Synthetic " + category_id.replace("-", " "),
                           "definition": f"Synthetic copy of the built-in {category_id!r} category.",
                           "parent": parent, "kind": kind, "published_share": None, "name_status": "ours"})
    return categories


def leaf_content_categories(categories: list[dict[str, Any]]) -> list[str]:
    parents = {category["parent"] for category in categories}
    return [category["id"] for category in categories
            if category["kind"] == "content" and category["id"] not in parents]


def category_weights(config: Config, leaves: list[str], dataset_index: int) -> np.ndarray:
    """Zipf-like shares of the leaf categories, perturbed per dataset."""
    rng = _rng(config.seed, TAXONOMY, dataset_index + 1)
    base = 1.0 / np.arange(1, len(leaves) + 1) ** 0.9
    weights = base * rng.gamma(2.0, 0.5, len(leaves))
    return weights / weights.sum()


def write_taxonomy(out_dir: Path, categories: list[dict[str, Any]]) -> int:
    """Write ``taxonomy/v1.yaml``; return its size in bytes."""
    # NOTE: written in the shape atlas_builder/taxonomy/load.py reads (version, previous_version,
    # categories with its CATEGORY_KEYS); keep it in step if that file format changes.
    data = dump_yaml({"version": "1", "previous_version": None, "categories": categories})
    header = b"# Synthetic taxonomy generated by bench/generate.py for build benchmarks.\n"
    return _write(out_dir / "taxonomy" / "v1.yaml", header + data)


# --- writing ----------------------------------------------------------------


def _write(path: Path, data: bytes) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)


@dataclass
class DatasetReport:
    """Bytes and row counts that one worker wrote for one dataset."""

    dataset: str
    bytes: int
    rows: int
    failures: int
    judged: int


def write_dataset(config: Config, out_dir: Path, dataset: DatasetSpec, models: list[ModelSpec],
                  leaves: list[str]) -> DatasetReport:
    """Write one dataset's metadata, its result file for each of ``models`` and their judge answers."""
    written = _write(out_dir / "datasets" / f"{dataset.id}.yaml", dump_yaml(dataset_metadata(dataset)))
    corpus = corpus_for(config, dataset.index)
    instances = make_instances(config, dataset, corpus)
    weights = category_weights(config, leaves, dataset.index)
    rows = failures = judged = 0
    for model in models:
        pair = make_pair(config, dataset, model, corpus, instances, leaves, weights)
        written += _write(out_dir / "results" / dataset.id / f"{model.id}.jsonl", pair.results)
        if pair.judge:
            written += _write(judge_path(out_dir, dataset.id, model.id), pair.judge)
        rows += pair.rows
        failures += pair.failures
        judged += pair.judged
    return DatasetReport(dataset.id, written, rows, failures, judged)


def _write_dataset_job(args: tuple[Config, Path, DatasetSpec, list[ModelSpec], list[str]]) -> DatasetReport:
    return write_dataset(*args)


def check_target(out_dir: Path, force: bool) -> None:
    """Refuse to write into the repository's ``data/`` or over files this generator did not write."""
    resolved = out_dir.resolve()
    if resolved == (REPO_ROOT / "data").resolve() or resolved.name == "data" and (resolved.parent / "atlas_builder").is_dir():
        raise SystemExit(f"will not write synthetic data into {out_dir}: that is the real atlas data; "
                         "choose another --out such as bench/out/1/data")
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MARKER_FILE).exists():
        raise SystemExit(f"{out_dir} exists and was not written by this generator (no {MARKER_FILE}); "
                         "choose an empty or new --out")
    if out_dir.exists() and (out_dir / MARKER_FILE).exists() and not force:
        raise SystemExit(f"{out_dir} already contains a synthetic atlas; pass --force to replace it")


def generate(config: Config, out_dir: Path, *, jobs: int | None = None, force: bool = False) -> dict[str, Any]:
    """Write the whole synthetic atlas to ``out_dir``; return the figures that are also stored in its marker file."""
    out_dir = Path(out_dir)
    check_target(out_dir, force)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    start = time.perf_counter()
    datasets, models = all_specs(config)
    categories = taxonomy_categories(config)
    leaves = leaf_content_categories(categories)
    written = write_taxonomy(out_dir, categories)
    for model in models:
        written += _write(out_dir / "models" / f"{model.id}.yaml", dump_yaml(model_metadata(model)))
    jobs = jobs or os.cpu_count() or 1
    tasks = [(config, out_dir, dataset, models, leaves) for dataset in datasets]
    reports: list[DatasetReport] = []
    if jobs == 1:
        reports = [_write_dataset_job(task) for task in tasks]
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for report in pool.map(_write_dataset_job, tasks):
                reports.append(report)
                logger.info("wrote %s: %d rows, %.1f MB", report.dataset, report.rows, report.bytes / 1e6)
    summary = {
        "generator_version": GENERATOR_VERSION,
        "config": asdict(config),
        "models": len(models),
        "datasets": len(datasets),
        "categories": len(categories),
        "rows": sum(report.rows for report in reports),
        "failures": sum(report.failures for report in reports),
        "judge_answers": sum(report.judged for report in reports),
        "bytes": written + sum(report.bytes for report in reports),
        "seconds": round(time.perf_counter() - start, 2),
        "jobs": jobs,
    }
    marker = {key: value for key, value in summary.items() if key not in ("seconds", "jobs")}
    _write(out_dir / MARKER_FILE, (json.dumps(marker, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return summary


def read_marker(out_dir: Path) -> dict[str, Any] | None:
    """Return the stored summary of a generated atlas, or None when ``out_dir`` contains none."""
    path = Path(out_dir) / MARKER_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


# --- edits for incremental-build benchmarks ---------------------------------


def add_model(config: Config, out_dir: Path, index: int | None = None) -> list[Path]:
    """Add one more synthetic model (metadata, results on every dataset, judge answers); return the new files."""
    datasets, models = all_specs(config)
    index = len(models) if index is None else index
    model = model_spec(config, index)
    categories = taxonomy_categories(config)
    leaves = leaf_content_categories(categories)
    created = [out_dir / "models" / f"{model.id}.yaml"]
    _write(created[0], dump_yaml(model_metadata(model)))
    for dataset in datasets:
        corpus = corpus_for(config, dataset.index)
        instances = make_instances(config, dataset, corpus)
        pair = make_pair(config, dataset, model, corpus, instances, leaves,
                         category_weights(config, leaves, dataset.index))
        path = out_dir / "results" / dataset.id / f"{model.id}.jsonl"
        _write(path, pair.results)
        created.append(path)
        if pair.judge:
            judge = judge_path(out_dir, dataset.id, model.id)
            _write(judge, pair.judge)
            created.append(judge)
    return created


def edit_dataset_description(out_dir: Path, dataset: str) -> bytes:
    """Append a sentence to one dataset's description; return the old file bytes so the edit can be undone."""
    path = out_dir / "datasets" / f"{dataset}.yaml"
    old = path.read_bytes()
    obj = yaml.safe_load(old)
    obj["description"] = obj["description"] + " Edited to measure an incremental build."
    path.write_bytes(dump_yaml(obj))
    return old


# --- command line -----------------------------------------------------------


def default_out(scale: int, axis: str, instances_factor: float) -> Path:
    name = str(scale) if axis == "models" else f"{scale}-datasets"
    if instances_factor != 1.0:
        name += f"-i{instances_factor:g}"
    return REPO_ROOT / "bench" / "out" / name / "data"


def directory_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in Path(path).rglob("*") if entry.is_file())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1, help="multiply the 83 models (or 35 datasets) by this factor")
    parser.add_argument("--axis", choices=("models", "datasets"), default="models",
                        help="which count --scale multiplies (default: models)")
    parser.add_argument("--instances-factor", type=float, default=1.0,
                        help="multiply every dataset's instance count, e.g. 0.1 for a smaller 10x run")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same bytes")
    parser.add_argument("--out", type=Path, default=None,
                        help="target folder (default: bench/out/<scale>/data, which git ignores)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPU count)")
    parser.add_argument("--force", action="store_true", help="replace an atlas this generator wrote before")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    args = parse_args(argv)
    config = Config(seed=args.seed, scale=args.scale, axis=args.axis, instances_factor=args.instances_factor)
    out_dir = args.out or default_out(args.scale, args.axis, args.instances_factor)
    summary = generate(config, out_dir, jobs=args.jobs, force=args.force)
    print(json.dumps({"out": str(out_dir), **summary}, indent=2))
    print(f"generated {summary['rows']:,} rows ({summary['models']} models x {summary['datasets']} datasets), "
          f"{summary['bytes'] / 1e9:.2f} GB in {summary['seconds']:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
