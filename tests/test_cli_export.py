import json

from click.testing import CliRunner
from atlas_factory import SEED_TAXONOMY, write_atlas

from atlas_builder.cli import cli


def test_export_diagnoses_fields(tmp_path):
    write_atlas(
        tmp_path,
        {("quiz", "alpha"): [
            {"id": "q1", "input": "Pick A or B.", "output": "", "score": 0, "reference": "B"},
            {"id": "q2", "input": "Pick A or B.", "output": "B", "score": 1, "reference": "B"},
        ]},
        taxonomy_from=SEED_TAXONOMY,
    )

    result = CliRunner().invoke(cli, ["export", "diagnoses", "--data", str(tmp_path)])

    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1
    assert lines[0]["diagnoser"] == "check:empty-output"
    assert lines[0]["category"] == "empty-output"
    for record in lines:
        for key in ("dataset", "model", "instance_id", "diagnoser", "title", "summary", "category"):
            assert key in record
        assert record["instance_id"] == "q1"


def test_export_invalid_data_exits_nonzero(tmp_path):
    write_atlas(tmp_path, {("quiz", "alpha"): [{"id": "q1", "input": "x", "output": "y"}]}, taxonomy_from=SEED_TAXONOMY)

    result = CliRunner().invoke(cli, ["export", "diagnoses", "--data", str(tmp_path)])

    assert result.exit_code == 1
    assert "missing required field 'score'" in result.output
