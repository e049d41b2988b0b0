"""The end-to-end run: stages, caching, resume."""

from .errors import StageNotBuiltError


def run_pipeline(*args, **kwargs):
    raise StageNotBuiltError("run is not built yet")
