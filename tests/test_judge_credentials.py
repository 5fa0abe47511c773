from atlas_factory import SEED_TAXONOMY, write_atlas
from click.testing import CliRunner

from atlas_builder.cli import cli


def test_diagnose_without_key_stops_before_sending(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    data = write_atlas(tmp_path / "data", {("quiz", "alpha"): [
        {"id": "q1", "input": "Pick one.\nA. cat\nB. dog", "output": "The answer is A.", "score": 0, "reference": ["B", "dog"]},
    ]}, taxonomy_from=SEED_TAXONOMY)

    # Port 9 (discard) on loopback: a request that slipped through would fail differently, with a connection error.
    result = CliRunner().invoke(cli, ["diagnose", "--data", str(data), "--judge", "openai/test",
                                      "--api-base", "http://127.0.0.1:9/v1"])

    assert result.exit_code == 1
    assert "no credentials for judge 'openai/test': set OPENAI_API_KEY" in result.output
    assert not (data / "judge").exists() or not any((data / "judge").rglob("*.jsonl"))
