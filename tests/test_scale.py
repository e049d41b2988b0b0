"""domainfit.scale: the encode of mine/eval/export inside Ray Data, on a 2-worker local Ray."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from domainfit.encoding import encode
from domainfit.models import load_model
from domainfit.scale import encode_parquet, local_ray, read_vectors


def write_chunk_files(folder, texts: list[str], files: int) -> list[str]:
    """``texts`` as ``files`` Parquet files of chunk rows: a dataset Ray reads in several blocks."""
    folder.mkdir()
    ids = [f"chunk-{i:04d}" for i in range(len(texts))]
    step = -(-len(texts) // files)
    for part, start in enumerate(range(0, len(texts), step)):
        table = pa.table({"chunk_id": ids[start:start + step], "doc_id": ["doc"] * len(ids[start:start + step]),
                          "text": texts[start:start + step]})
        pq.write_table(table, folder / f"part-{part}.parquet")
    return ids


@pytest.mark.slow
def test_ray_data_vectors_equal_the_single_process_ones(tmp_path, minilm_path):
    pytest.importorskip("ray", reason="needs the [scale] extra (pip install 'domainfit[scale]'); make test installs it")
    texts = [f"Section {i}: contractor passes for site {i % 7} are renewed every {i % 11 + 1} months." * (1 + i % 3)
             for i in range(48)]
    ids = write_chunk_files(tmp_path / "chunks", texts, files=4)

    with local_ray(num_cpus=3):
        encode_parquet(tmp_path / "chunks", tmp_path / "vectors", model="minilm", workers=2, rows_per_batch=8,
                       blocks=4)

    found = read_vectors(tmp_path / "vectors")
    assert sorted(found) == ids
    single = encode(load_model(str(minilm_path)), texts, kind="document")
    np.testing.assert_allclose(np.stack([found[chunk_id] for chunk_id in ids]), single, atol=1e-6, rtol=0)


def test_the_doc_shows_the_code_that_runs():
    """docs/scale.md's map_batches block is encode_parquet's own code, line for line."""
    import inspect
    import re
    from pathlib import Path

    from domainfit import scale

    doc = (Path(__file__).resolve().parents[1] / "docs" / "scale.md").read_text(encoding="utf-8")
    block = next(code for code in re.findall(r"```python\n(.*?)```", doc, re.S) if "map_batches(" in code)
    source = [line.strip() for line in inspect.getsource(scale.encode_parquet).splitlines()]
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    start = source.index(lines[0])
    assert source[start:start + len(lines)] == lines
