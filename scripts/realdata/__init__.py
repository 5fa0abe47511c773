"""Convert the public per-instance evaluation results into the atlas format under ``data/``.

Run ``python -m scripts.realdata [--source DIR] [--data DIR] [--only NAME]`` from the
repository root. Every converter is deterministic: the same source files give the
same bytes in ``data/``.
"""

from scripts.realdata.run import CONVERTERS, convert_all

__all__ = ["CONVERTERS", "convert_all"]
