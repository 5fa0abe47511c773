"""`atlas serve`: errors a user can act on."""

from __future__ import annotations

import socket

from click.testing import CliRunner

from atlas_builder.cli import cli


def test_serve_port_in_use_fails_cleanly(tmp_path):
    (tmp_path / "index.html").write_text("<h1>atlas</h1>", encoding="utf-8")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--site", str(tmp_path), "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"127.0.0.1:{port}" in result.output
    assert "--port 0" in result.output
    assert "Traceback" not in result.output
