"""Run the converters and write the model metadata they need."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from scripts.realdata import alpaca_eval, bbh, gsm8k, helm, mmlu_pro
from scripts.realdata.common import ALPACA_EVAL, BBH, GSM8K, HELM, MMLU_PRO
from scripts.realdata.models import write_models
from scripts.realdata.report import Report

logger = logging.getLogger(__name__)

Converter = Callable[[Path, Path], Report]

# dataset id -> (source folder, converter)
CONVERTERS: dict[str, tuple[str, Converter]] = {
    mmlu_pro.DATASET_ID: (MMLU_PRO.folder, mmlu_pro.convert),
    helm.BBQ_ID: (HELM.folder, helm.convert_bbq),
    helm.SST_ID: (HELM.folder, helm.convert_sst),
    alpaca_eval.DATASET_ID: (ALPACA_EVAL.folder, alpaca_eval.convert),
    bbh.MODES["cot"]: (BBH.folder, bbh.convert_cot),
    bbh.MODES["direct"]: (BBH.folder, bbh.convert_direct),
    gsm8k.DATASET_ID: (GSM8K.folder, gsm8k.convert),
}


def convert_all(source_dir: Path, data_dir: Path, only: list[str] | None = None) -> dict[str, Report]:
    """Run the selected converters (all by default); return their reports by dataset id."""
    names = only or list(CONVERTERS)
    unknown = [name for name in names if name not in CONVERTERS]
    if unknown:
        raise ValueError(f"unknown converter {unknown}; choose from {', '.join(CONVERTERS)}")
    missing = sorted({CONVERTERS[name][0] for name in names if not (source_dir / CONVERTERS[name][0]).is_dir()})
    if missing:
        raise FileNotFoundError(f"source folders {missing} not found under {source_dir}; pass --source")
    reports = {}
    for name in names:
        folder, converter = CONVERTERS[name]
        logger.info("converting %s from %s", name, source_dir / folder)
        reports[name] = converter(source_dir, data_dir)
    models = write_models(data_dir, {model for report in reports.values() for model in report.per_model})
    logger.info("wrote %d model files", len(models))
    return reports
