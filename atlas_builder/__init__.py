"""ErrorAtlas builder: turns per-instance evaluation results into a static site that explains why models fail."""

__version__ = "0.1.0"
