"""Results stage: read and validate the versioned result files in ``data/``.

Entry point: ``load_results(data_dir) -> Results``.
"""

from atlas_builder.results.load import InvalidResultsError, load_results, validate_paths
from atlas_builder.results.outputs import ResultFileChangedError
from atlas_builder.results.write import write_result_file, write_yaml

__all__ = ["InvalidResultsError", "ResultFileChangedError", "load_results", "validate_paths", "write_result_file",
           "write_yaml"]
