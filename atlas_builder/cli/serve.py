"""`atlas serve`: preview the built site on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
from pathlib import Path

import click


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - name fixed by the base class
        click.echo(f"{self.address_string()} {format % args}", err=True)


@click.command(name="serve")
@click.option("--site", "site_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("site"), show_default=True,
              help="Built site folder to serve (from `atlas build`, or a releases folder from `atlas release`).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port on 127.0.0.1 (0 picks a free one).")
def command(site_dir: Path, port: int) -> None:
    """Serve the built site at http://127.0.0.1:PORT/ until interrupted (Ctrl-C).

    Only the local machine can connect. Run `atlas build` first; rebuild and
    reload the page to see changes.
    """
    if not (site_dir / "index.html").is_file():
        raise click.ClickException(f"no built site in {site_dir} (index.html not found); run `atlas build --out {site_dir}` first")
    handler = functools.partial(_Handler, directory=str(site_dir))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as error:
        raise click.ClickException(
            f"cannot listen on 127.0.0.1:{port} ({error.strerror or error}); the port is probably in use. "
            "Pass another port with --port, or --port 0 to pick a free one") from error
    with server:
        click.echo(f"Serving {site_dir} at http://127.0.0.1:{server.server_port}/ (Ctrl-C stops)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            click.echo("Stopped.")
