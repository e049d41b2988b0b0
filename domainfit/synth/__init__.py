"""synth: documents -> chunks -> validated question–chunk pairs."""

from ..errors import StageNotBuiltError


def run_synth(*args, **kwargs):
    raise StageNotBuiltError("synth is not built yet")
