import sys

from bench.build import measure

LOG = """INFO atlas_builder.pipeline: step load: done in 1.25 s
INFO atlas_builder.site.render: site sources: 3 pages (3 rendered, 0 skipped); 9 files written, 0 unchanged, 0 stale removed (2.50 s pages, 0.75 s charts)
INFO atlas_builder.site: mkdocs build --strict: 4.00 s into /tmp/site
INFO atlas_builder.pipeline: step site: done in 7.50 s
"""


def test_measure_reads_step_timings(tmp_path):
    command = [sys.executable, "-c", f"print({LOG!r})"]

    run = measure("fake build", command, cwd=tmp_path, log_path=tmp_path / "logs" / "fake.log")

    assert run.exit_code == 0
    assert run.steps == {"load": 1.25, "site": 7.5, "site.pages": 2.5, "site.charts": 0.75, "site.mkdocs": 4.0}
    assert run.peak_rss_mb > 0
    assert run.peak_pss_mb > 0
