
import pytest
from atlas_factory import SEED_TAXONOMY, write_atlas
from click.testing import CliRunner

from atlas_builder.cli import cli
from atlas_builder.pipeline import OUTPUT_MARKER, UnsafeOutputError, check_output_folders


@pytest.fixture
def data_dir(tmp_path):
    return write_atlas(tmp_path / "data", {("quiz", "alpha"): [{"id": "q1", "input": "x", "output": "", "score": 0}]},
                       taxonomy_from=SEED_TAXONOMY)


def test_output_inside_data_rejected(data_dir):
    for out in (data_dir, data_dir / "site", data_dir.parent):
        with pytest.raises(UnsafeOutputError, match="overlaps the data folder"):
            check_output_folders(data_dir, out=out, docs=data_dir.parent / "docs")


def test_output_equal_to_docs_rejected(data_dir, tmp_path):
    with pytest.raises(UnsafeOutputError, match="overlaps --docs"):
        check_output_folders(data_dir, out=tmp_path / "same", docs=tmp_path / "same")


def test_foreign_nonempty_folder_rejected(data_dir, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "IMPORTANT.txt").write_text("keep me")

    with pytest.raises(UnsafeOutputError, match="not empty and was not written by atlas build"):
        check_output_folders(data_dir, out=foreign, docs=tmp_path / "docs")
    assert (foreign / "IMPORTANT.txt").read_text() == "keep me"


def test_marked_folder_accepted_again(data_dir, tmp_path):
    check_output_folders(data_dir, out=tmp_path / "site", docs=tmp_path / "docs")
    (tmp_path / "site" / "index.html").write_text("old build")

    check_output_folders(data_dir, out=tmp_path / "site", docs=tmp_path / "docs")

    assert (tmp_path / "site" / OUTPUT_MARKER).exists()


def test_missing_data_folder_named(tmp_path):
    with pytest.raises(UnsafeOutputError, match="data folder .* not found"):
        check_output_folders(tmp_path / "nope", out=tmp_path / "site")


def test_build_cli_keeps_data_when_out_is_data(data_dir):
    before = sorted(path.relative_to(data_dir) for path in data_dir.rglob("*"))

    result = CliRunner().invoke(cli, ["build", "--data", str(data_dir), "--out", str(data_dir)])

    assert result.exit_code == 1
    assert "overlaps the data folder" in result.output
    assert sorted(path.relative_to(data_dir) for path in data_dir.rglob("*")) == before


def test_build_force_passed_to_site(data_dir, tmp_path, monkeypatch):
    from atlas_builder import pipeline

    seen = {}

    def fake_render(*args, **kwargs):
        seen["force"] = kwargs["force"]
        raise RuntimeError("stop after the site call")

    monkeypatch.setattr(pipeline, "render_site", fake_render)

    result = CliRunner().invoke(cli, ["build", "--data", str(data_dir), "--out", str(tmp_path / "site"),
                                      "--docs", str(tmp_path / "docs"), "--force"])

    assert isinstance(result.exception, RuntimeError)
    assert seen == {"force": True}
