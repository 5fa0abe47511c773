"""The whole chain through the real CLI: diagnose, classify, induce, revise, stability, export and build.

A small made-up atlas (3 models x 2 datasets x 20 instances) is copied into a
temporary folder together with the seed taxonomy. The local OpenAI-compatible
stub tells each request's purpose from the structured output schema name and
the system prompt. Diagnoses get titles from a fixed table, and the taxonomy
requests get answers that form a plausible taxonomy.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

from atlas_factory import SEED_TAXONOMY, dataset_yaml, write_atlas  # noqa: E402
from openai_stub import OpenAIStub  # noqa: E402

from atlas_builder.cli import cli  # noqa: E402
from atlas_builder.taxonomy import load_taxonomy, resolve_category  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

JUDGE = "openai/stub"
MODELS = ("alpha", "beta", "gamma")
INSTANCES = 20
FENCED = r"BEGIN (DATA-[0-9a-f]+) {name}\n(.*?)\nEND \1 {name}"
WRONG_BLOCK = re.compile(FENCED.format(name="WRONG ANSWER"), re.S)
TITLES_BLOCK = re.compile(FENCED.format(name="TITLES"), re.S)
CATEGORIES_BLOCK = re.compile(FENCED.format(name="CATEGORIES"), re.S)
PARENT_BLOCK = re.compile(FENCED.format(name="PARENT CATEGORY"), re.S)
FALLBACK = re.compile(r'answer "([^"]+)" for it')

# Error titles by theme. The first three and the last three titles of a theme form one subcategory each.
THEMES: dict[str, list[str]] = {
    "units": [
        "Misread units in rate problem", "Mixed minutes and hours", "Converted kilometres to miles wrongly",
        "Reported speed per minute as per hour", "Dropped units from the answer", "Used distance instead of speed",
    ],
    "lists": [
        "Dropped a required list item", "Listed only two of three items", "Omitted the final step",
        "Skipped a required field", "Left out one named entity", "Gave one example where three were asked",
    ],
    "arithmetic": [
        "Added instead of multiplied", "Divided by the wrong total", "Multiplied instead of divided",
        "Rounded an intermediate result too early", "Sign error in subtraction", "Lost a carried digit in addition",
    ],
    "reading": [
        "Answered a different question", "Ignored the requested order", "Confused the subject of the question",
        "Misread the constraint on length", "Took the example as the task", "Answered for the wrong year",
    ],
}
VAGUE_TITLE = "Answer is wrong for unclear reasons"  # the classifier returns the fallback name for it
INVENTED_TITLE = "Answered for the wrong year"  # the classifier invents a category name for it
TITLES = [title for titles in THEMES.values() for title in titles] + [VAGUE_TITLE]
BROKEN = "(no usable answer)"
THEME_OF = {title: theme for theme, titles in THEMES.items() for title in titles}

# Category names of the induced taxonomy: top level by theme, and two subcategories per top-level category.
TOP = {"units": "Unit Handling", "lists": "List Completeness", "arithmetic": "Operation Execution",
       "reading": "Question Reading"}
SUB = {
    "Unit Handling": ("Unit Conversion", "Quantity Selection"),
    "List Completeness": ("Item Omission", "Field Omission"),
    "Operation Execution": ("Operation Choice", "Calculation Precision"),
    "Question Reading": ("Target Misreading", "Constraint Neglect"),
}
# The published seed version's category for each theme.
SEED_NAME = {"units": "Specification Misinterpretation", "lists": "Missing Required Element",
             "arithmetic": "Computation Error", "reading": "Specification Misinterpretation"}


def fails(model: str, index: int) -> bool:
    return {"alpha": index % 2 == 0, "beta": index % 3 == 0, "gamma": index % 5 == 0}[model]


FAILURES = 2 * sum(fails(model, index) for model in MODELS for index in range(INSTANCES))


def rate_row(model: str, index: int) -> dict[str, Any]:
    distance, minutes = 12 * (index + 2), 30 * (1 + index % 3)
    speed = distance * 60 / minutes
    wrong = {
        "alpha": f"A distance of {distance} km in {minutes} minutes is {distance / minutes:.2f} km per minute, "
                 f"so the speed is {distance / minutes:.2f}.",
        "beta": f"The cyclist covers {distance} km. Dividing by {minutes} gives {distance / minutes:.2f}, "
                f"times 100 is {100 * distance / minutes:.0f} km/h.",
        "gamma": f"Speed = {minutes} / {distance} = {minutes / distance:.3f} hours per km.",
    }[model]
    failed = fails(model, index)
    return {
        "id": f"rate-{index:03d}",
        "input": f"A cyclist rides {distance} km in {minutes} minutes. What is the average speed in km/h?",
        "output": wrong if failed else f"{distance} km in {minutes / 60:g} h is {speed:g} km/h.",
        "score": 0.0 if failed else 1.0,
        "reference": f"{speed:g}",
    }


COLOURS = ["red", "green", "blue", "cyan", "magenta", "yellow"]


def list_row(model: str, index: int) -> dict[str, Any]:
    items = [COLOURS[(index + k) % len(COLOURS)] for k in range(3)]
    failed = fails(model, index)
    wrong = {
        "alpha": f"For item set {index} the colours are {items[0]} and {items[1]}.",
        "beta": f"Here is one: {items[2]}. That should cover question {index}.",
        "gamma": f"{items[1].title()}, {items[0]}; I could not think of another for item set {index}.",
    }[model]
    return {
        "id": f"list-{index:03d}",
        "input": f"Item set {index}: name the three colours {', '.join(items)} in alphabetical order.",
        "output": wrong if failed else ", ".join(sorted(items)),
        "score": 0.0 if failed else 1.0,
        "reference": ", ".join(sorted(items)),
    }


def make_atlas(root: Path) -> tuple[Path, dict[str, str]]:
    """Write the atlas; return its folder and the title the judge gives each wrong output."""
    results = {}
    for model in MODELS:
        results[("rates", model)] = [rate_row(model, index) for index in range(INSTANCES)]
        results[("lists", model)] = [list_row(model, index) for index in range(INSTANCES)]
    datasets = {
        "rates": dataset_yaml("rates", name="Rate problems", task_type="math"),
        "lists": dataset_yaml("lists", name="Colour lists", task_type="open_ended"),
    }
    data = write_atlas(root, results, datasets=datasets, taxonomy_from=SEED_TAXONOMY)
    wrong_outputs = [row["output"] for rows in results.values() for row in rows if row["score"] == 0.0]
    title_of = {}
    assert len(set(wrong_outputs)) == FAILURES  # the stub identifies a failure by its output
    for number, output in enumerate(wrong_outputs):
        title_of[output] = TITLES[number % len(TITLES)]
    title_of[wrong_outputs[-1]] = BROKEN  # the judge returns only cut-off JSON for it, so it stays undiagnosed
    return data, title_of


def diagnosis_answer(body: dict[str, Any], title_of: dict[str, str]) -> Any:
    wrong = WRONG_BLOCK.search(body["messages"][1]["content"]).group(2)
    title = title_of.get(wrong.strip(), VAGUE_TITLE)
    if title == BROKEN:
        return '{"criteria": [{"criterion": "cut off'
    quote = wrong.strip()[:30]
    return {
        "criteria": [
            {"criterion": "Answers the question that was set, in the requested form.", "met": False, "evidence": quote},
            {"criterion": "Stays on the topic of the task.", "met": True, "evidence": ""},
        ],
        "first_error": {"criterion": 1, "evidence": quote, "explanation": f"The answer shows this error: {title}."},
        "error_title": title,
        "error_summary": f"{title}; the final answer differs from the reference.",
        "reference_flag": False,
        "ambiguous_flag": False,
        "flag_reason": "",
    }


def block_lines(pattern: re.Pattern[str], text: str) -> list[str]:
    match = pattern.search(text)
    return [line for line in match.group(2).splitlines() if line.strip()] if match else []


def categories_answer(body: dict[str, Any]) -> dict[str, Any]:
    system, user = body["messages"][0]["content"], body["messages"][1]["content"]
    parent_lines = block_lines(PARENT_BLOCK, user)
    if parent_lines:
        parent = parent_lines[0].split(":", 1)[0].strip()
        names = SUB.get(parent, (f"{parent} Detail", f"{parent} Scope"))
        return {"categories": [{"name": name, "definition": f"Within {parent}: the error is about {name.lower()}."}
                               for name in names]}
    themes = list(TOP)
    if system.startswith("You build"):
        themes = themes[:3]  # the update request adds the last theme, as if the first batch lacked it
    wording = "reviewed" if system.startswith("You review") else "draft"
    return {"categories": [
        {"name": TOP[theme], "definition": f"The model fails at {TOP[theme].lower()} ({wording} definition)."}
        for theme in themes
    ]}


def classify_answer(body: dict[str, Any]) -> dict[str, Any]:
    system, user = body["messages"][0]["content"], body["messages"][1]["content"]
    fallback = FALLBACK.search(system).group(1)
    offered = {line[2:].split(":", 1)[0].strip() for line in block_lines(CATEGORIES_BLOCK, user)}
    assignments = []
    for line in block_lines(TITLES_BLOCK, user):
        number, title = line.split(". ", 1)
        theme = THEME_OF.get(title)
        choice = fallback
        if title == INVENTED_TITLE:
            choice = "Temporal Confusion"
        elif theme is not None:
            half = THEMES[theme].index(title) // 3
            for name in (TOP[theme], SUB[TOP[theme]][half], SEED_NAME[theme]):
                if name in offered:
                    choice = name
                    break
        assignments.append({"index": int(number), "category": choice})
    return {"assignments": assignments}


def make_script(title_of: dict[str, str]):
    def script(body: dict[str, Any]) -> Any:
        name = body["response_format"]["json_schema"]["name"]
        if name == "failure_diagnosis":
            return diagnosis_answer(body, title_of)
        if name == "taxonomy_categories":
            return categories_answer(body)
        if name == "taxonomy_assignments":
            return classify_answer(body)
        raise AssertionError(f"unexpected schema name {name!r}")
    return script


def run(*args: str) -> Any:
    env = {"OPENAI_API_KEY": "none", "LITELLM_OFFLINE_MODE": "true"}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def export_records(data: Path) -> list[dict[str, Any]]:
    output = run("export", "diagnoses", "--data", str(data)).stdout
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_cli_chain_end_to_end(tmp_path):
    data, title_of = make_atlas(tmp_path / "data")
    judge = ("--judge", JUDGE)

    with OpenAIStub(make_script(title_of)) as stub:
        api = ("--api-base", stub.api_base)

        # 1. Diagnose every failure the checks leave; a second run finds every answer stored.
        first = run("diagnose", "--data", str(data), *judge, *api, "--sample-ratio", "1", "--backoff", "0.01")
        diagnosed = stub.count
        assert diagnosed > 0, first.output
        second = run("diagnose", "--data", str(data), *judge, *api, "--sample-ratio", "1", "--backoff", "0.01")
        assert stub.count == diagnosed, second.output
        assert "nothing to send" in second.output

        before = export_records(data)
        judged = [record for record in before if record["kind"] == "judge"]
        assert len(judged) == FAILURES - 1
        assert {record["title"] for record in judged} >= {"Misread units in rate problem", "Dropped a required list item"}
        assert all(record["category"] is None for record in judged)

        # 2. Classify the judge titles into the published seed version.
        classified = run("taxonomy", "classify", "--data", str(data), *judge, *api)
        assert "a revision is due" in classified.output
        assert re.search(r"rates: \d+ of \d+ classified judge failures in Other", classified.output)
        seed = load_taxonomy(data)
        assert seed.version == "1"
        records = export_records(data)
        judged = [record for record in records if record["kind"] == "judge"]
        assert len(judged) == FAILURES - 1
        assert all(record["category"] in seed.categories for record in judged)
        by_title = {record["title"]: record["category"] for record in judged}
        assert by_title["Dropped a required list item"] == "missing-required-element"
        assert by_title[VAGUE_TITLE] == "other"
        assert by_title[INVENTED_TITLE] == "other"
        assert "invented the category 'Temporal Confusion'" in classified.output
        classify_requests = stub.count
        again = run("taxonomy", "classify", "--data", str(data), *judge, *api, "--revision-threshold", "0.5")
        assert stub.count == classify_requests, again.output
        assert "a revision is due" not in again.output

        # 3. Induce a draft, publish it as version 2, and follow the seed ids into it.
        induce_args = ("--data", str(data), *judge, *api, "--propose-batch", "10", "--max-category-share", "0.3")
        induced = run("taxonomy", "induce", *induce_args)
        drafts = sorted((data / "taxonomy" / "drafts").glob("*.yaml"))
        assert len(drafts) == 1, induced.output
        draft = yaml.safe_load(drafts[0].read_text(encoding="utf-8"))
        draft_names = {category["name"] for category in draft["categories"]}
        assert set(TOP.values()) <= draft_names
        assert "Item Omission" in draft_names

        revised = run("taxonomy", "revise", "--data", str(data), "--draft", str(drafts[0]), *judge, *api)
        assert (data / "taxonomy" / "v2.yaml").is_file(), revised.output
        second_version = load_taxonomy(data)
        assert second_version.version == "2"
        assert set(second_version.mapping) == set(seed.categories)
        for old_id in seed.categories:
            targets = resolve_category(old_id, "1", "2", data)
            assert all(target in second_version.categories for target in targets), (old_id, targets)
        # All seed "Missing Required Element" failures sit under "List Completeness", so that category keeps the id.
        assert second_version.categories["missing-required-element"].name == "List Completeness"
        assert second_version.categories["missing-required-element"].parent is None
        assert resolve_category("missing-required-element", "1", "2", data) == ["missing-required-element"]
        assert "v1 -> v2:" in revised.output

        shown = run("taxonomy", "show", "--data", str(data))
        assert "List Completeness" in shown.output
        assert "Item Omission" in shown.output

        run("taxonomy", "classify", "--data", str(data), *judge, *api)
        judged = [record for record in export_records(data) if record["kind"] == "judge"]
        assert all(record["category"] in second_version.categories for record in judged)
        names = Counter(record["category_name"] for record in judged)
        assert names["Item Omission"] + names["List Completeness"] > 0, names

        # 4. Re-induce twice and report agreement.
        stability = run("taxonomy", "stability", *induce_args, "--runs", "2")
        report = json.loads((data / "taxonomy" / "stability.json").read_text(encoding="utf-8"))
        assert set(report["levels"]) == {"top", "leaf"}
        for figures in report["levels"].values():
            # The stub's replies do not depend on the batch order, so both runs find the same partition.
            assert figures["ari"]["mean"] == pytest.approx(1.0), stability.output
            assert figures["nmi"]["mean"] == pytest.approx(1.0), stability.output
        assert report["categories"]
        assert set(report["categories"]) <= set(second_version.categories)
        assert "ARI" in stability.output

    # 5. Build the site offline from the stored answers.
    site, docs = tmp_path / "site", tmp_path / "site_src"
    built = run("build", "--data", str(data), "--out", str(site), "--docs", str(docs))
    assert "1 failures are still undiagnosed" in built.output

    leaf = Counter(record["category"] for record in judged).most_common(1)[0][0]
    top = second_version.top_level(leaf)
    model_page = (docs / "docs" / "models" / "alpha.md").read_text(encoding="utf-8")
    assert f"[{second_version.categories[top].name}](../categories/{top}.md)" in model_page
    assert "Diagnosed by: openai/stub" in model_page
    category_page = (docs / "docs" / "categories" / f"{top}.md").read_text(encoding="utf-8")
    assert f"[{second_version.categories[leaf].name}]({leaf}.md)" in category_page
    assert "[Alpha](../models/alpha.md)" in category_page
    assert (site / "categories" / leaf / "index.html").is_file()

    shards = [json.loads(path.read_text(encoding="utf-8"))
              for path in sorted((docs / "docs" / "failures" / "data" / "shards").rglob("*.json"))]
    failures = [item for shard in shards for item in shard]
    shard_text = json.dumps(failures)
    assert "Misread units in rate problem" in shard_text
    assert "Answers the question that was set" in shard_text
    assert "The answer shows this error" in shard_text
