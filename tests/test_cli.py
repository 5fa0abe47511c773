import pyarrow
from click.testing import CliRunner

from atlas_builder.cli import cli


def test_cli_uses_jemalloc_for_arrow(monkeypatch):
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    previous = pyarrow.default_memory_pool()
    try:
        result = CliRunner().invoke(cli, ["validate", "--help"])
        backend = pyarrow.default_memory_pool().backend_name
    finally:
        pyarrow.set_memory_pool(previous)

    assert result.exit_code == 0, result.output
    assert backend == "jemalloc"


def test_cli_keeps_chosen_arrow_pool(monkeypatch):
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
    previous = pyarrow.default_memory_pool()
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    try:
        result = CliRunner().invoke(cli, ["validate", "--help"])
        backend = pyarrow.default_memory_pool().backend_name
    finally:
        pyarrow.set_memory_pool(previous)

    assert result.exit_code == 0, result.output
    assert backend == "system"
