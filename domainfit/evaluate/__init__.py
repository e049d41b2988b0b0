"""evaluate: leak-free splits and retrieval metrics at every Matryoshka dim."""

from ..errors import StageNotBuiltError


def run_evaluation(*args, **kwargs):
    raise StageNotBuiltError("eval is not built yet")


def evaluate_beir(*args, **kwargs):
    raise StageNotBuiltError("eval --beir is not built yet")
