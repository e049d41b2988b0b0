"""mining: LanceDB index of chunk vectors and hard / semi-hard negatives."""

from ..errors import StageNotBuiltError


def run_mining(*args, **kwargs):
    raise StageNotBuiltError("mining is not built yet")
