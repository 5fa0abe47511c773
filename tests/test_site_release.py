"""`atlas release`: versioned release folders, the version list and the bulk download."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from atlas_builder.cli import cli
from atlas_builder.site.release import ReleaseError, check_name

pytestmark = pytest.mark.slow

FIXTURE_DATA = Path(__file__).parent / "fixtures" / "site" / "data"


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    out = tmp_path_factory.mktemp("releases")
    runner = CliRunner()
    for name, date in (("2024.1", "2024-05-01"), ("2024.2", "2024-11-01")):
        result = runner.invoke(cli, ["release", name, "--data", str(FIXTURE_DATA), "--out", str(out), "--date", date,
                                     "--site-url", "https://atlas.example.org"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    return out


def test_older_release_kept(releases):
    assert (releases / "2024.1" / "models" / "llama-3-8b" / "index.html").is_file()
    assert (releases / "2024.2" / "models" / "llama-3-8b" / "index.html").is_file()


def test_versions_newest_first(releases):
    versions = json.loads((releases / "versions.json").read_text(encoding="utf-8"))
    assert [v["version"] for v in versions] == ["2024.2", "2024.1"]
    assert versions[0]["aliases"] == ["latest"]
    assert versions[1]["aliases"] == []
    assert 'url=2024.2/' in (releases / "index.html").read_text(encoding="utf-8")


def test_pages_name_their_release(releases):
    page = (releases / "2024.1" / "models" / "llama-3-8b" / "index.html").read_text(encoding="utf-8")
    assert "https://atlas.example.org/2024.1/models/llama-3-8b/" in page
    newer = (releases / "2024.2" / "releases" / "index.html").read_text(encoding="utf-8")
    assert "../../2024.1/" in newer


def test_bulk_download_honours_publishing(releases):
    archive = zipfile.ZipFile(io.BytesIO((releases / "2024.2" / "downloads" / "erroratlas-2024.2.zip").read_bytes()))
    names = archive.namelist()
    assert "erroratlas-2024.2/data/results/arith/llama-3-8b.jsonl" in names
    assert "erroratlas-2024.2/data/results/secret/llama-3-8b.jsonl" not in names
    scores = archive.read("erroratlas-2024.2/data/results/secret/llama-3-8b.scores.jsonl").decode("utf-8")
    assert "Question" not in scores
    assert "erroratlas-2024.2/tables/models/llama-3-8b.csv" in names
    assert "erroratlas-2024.2/diagnoses.jsonl" in names


def test_existing_release_rejected(releases):
    with pytest.raises(ReleaseError, match="already exists"):
        check_name("2024.1", releases)


@pytest.mark.parametrize("name", ["../evil", "Release 1", "dev", ""])
def test_invalid_release_name_rejected(tmp_path, name):
    with pytest.raises(ReleaseError):
        check_name(name, tmp_path)


@pytest.mark.parametrize("date", ["2024-13-45", "2024-02-30", "24-05-01", "2024-5-1", "yesterday", "2024-05-01T00:00"])
def test_invalid_release_date_rejected(tmp_path, date):
    result = CliRunner().invoke(cli, ["release", "2030.1", "--data", str(FIXTURE_DATA), "--out", str(tmp_path),
                                      "--date", date, "--site-url", "https://atlas.example.org"])
    assert result.exit_code == 2, result.output
    assert "--date" in result.output
    assert repr(date) in result.output
    assert not (tmp_path / "2030.1").exists()


def test_missing_site_url_warns(tmp_path, monkeypatch):
    import atlas_builder.site.release as release_module

    def stop(*args, **kwargs):
        raise ReleaseError("stopped by the test")

    monkeypatch.setattr(release_module, "make_release", stop)
    # The CLI logs to stderr through its own handler, so the warning is in the captured stderr.
    result = CliRunner().invoke(cli, ["release", "2030.1", "--data", str(FIXTURE_DATA), "--out", str(tmp_path),
                                      "--date", "2024-02-29"])
    assert result.exit_code == 1, result.output
    assert "stopped by the test" in result.stderr
    assert "no --site-url" in result.stderr
    assert "relative" in result.stderr


def test_release_sources_under_cache(tmp_path, monkeypatch):
    from atlas_builder.site.release import release_sources_dir

    monkeypatch.setenv("ATLAS_CACHE_DIR", str(tmp_path / "cache"))
    assert release_sources_dir("2030.1") == tmp_path / "cache" / "release-sources" / "2030.1"

    monkeypatch.setenv("ATLAS_CACHE_DIR", "off")
    temporary = release_sources_dir("2030.1")
    assert temporary.is_dir()
    assert "atlas-release-2030.1-" in temporary.name
