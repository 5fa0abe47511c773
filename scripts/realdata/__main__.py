"""Command line: ``python -m scripts.realdata [--source DIR] [--data DIR] [--only NAME ...]``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from scripts.realdata.run import CONVERTERS, convert_all

REPO_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.realdata", description=__doc__)
    parser.add_argument("--source", type=Path, default=REPO_ROOT.parent / "shared" / "realdata",
                        help="folder that contains one sub-folder per source (default: ../shared/realdata next to the repository)")
    parser.add_argument("--data", type=Path, default=Path("data"), help="atlas data folder to write (default: data)")
    parser.add_argument("--only", action="append", choices=list(CONVERTERS), metavar="NAME",
                        help=f"convert only this dataset; repeatable. One of: {', '.join(CONVERTERS)}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    reports = convert_all(args.source, args.data, args.only)
    failed = [name for name, report in reports.items() if report.read != report.written + report.skipped_total]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
