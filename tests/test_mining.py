"""Mining: strategies and guards on hand-made candidates, then the stage on real text.

The stage tests share one packaged MiniLM (``minilm_model``) and mine the ~120 real
financial pairs of ``tiny_run``; the ANN test uses random unit vectors because
LanceDB's IVF training needs more rows than a test should embed.
"""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from domainfit.artifacts import (
    Chunk,
    Pair,
    RunDir,
    content_hash,
    normalize_text,
    pair_id_for,
    read_chunks,
    read_manifest,
    write_chunks,
    write_jsonl,
)
from domainfit.config import MiningConfig, RunConfig
from domainfit.errors import MiningError
from domainfit.splits import read_splits
from domainfit.mining import ChunkIndex, mine_negatives, run_mining, select_negatives
from domainfit.mining.mine import check_window
from domainfit.mining.negatives import Candidate, ChunkRef, Exclusions

from conftest import financial_rows, run_from_rows


# --------------------------------------------------------------------------- helpers


def ref(name: str, doc: str = "", start: int = 0, end: int = 0, text: str | None = None) -> ChunkRef:
    return ChunkRef(chunk_id=name, doc_id=doc, char_start=start, char_end=end, text_hash=text or f"h-{name}")


def ranked(*scores: float, doc: str = "") -> list[Candidate]:
    """Candidates c0, c1, ... with the given scores, each in its own document."""
    return [Candidate(chunk=ref(f"c{i}", doc or f"d{i}", 0, 10), score=s, positive_cosine=0.1) for i, s in enumerate(scores)]


def ids(selection) -> list[str]:
    return [negative.chunk.chunk_id for negative in selection.negatives]


POSITIVE = ref("pos", "dpos", 0, 10)


class CountingModel:
    """The real model, counting the chunk texts it is asked to embed."""

    def __init__(self, model):
        self._model = model
        self.documents: list[str] = []

    def encode_document(self, texts, **kwargs):
        self.documents.extend(texts)
        return self._model.encode_document(texts, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


@pytest.fixture(scope="session")
def minilm_model():
    from domainfit.models import load_model

    return load_model("minilm")


@pytest.fixture(scope="module")
def mined(tmp_path_factory, minilm_model):
    """``tiny_run``'s data mined once with 4 negatives; tests copy it to re-use its index."""
    run = run_from_rows(tmp_path_factory.mktemp("mined") / "run", financial_rows(120))
    result, _ = mine(run, minilm_model, num_negatives=4)
    return run, result


@pytest.fixture
def mined_copy(mined, tmp_path) -> RunDir:
    run, _ = mined
    shutil.copytree(run.root, tmp_path / "run")
    return RunDir(tmp_path / "run")


def mine(run: RunDir, model, **mining) -> tuple:
    config = RunConfig(mining=MiningConfig(**mining))
    result = run_mining(run, config, progress=False, model=model)
    return result, pq.read_table(run.triplets)


def negatives_of(row: dict) -> list[tuple[str, str, float]]:
    found = []
    number = 1
    while f"negative_{number}_id" in row:
        if row[f"negative_{number}_id"] is not None:
            found.append((row[f"negative_{number}_id"], row[f"negative_{number}"], row[f"negative_{number}_score"]))
        number += 1
    return found


# --------------------------------------------------------------------------- pure selection


def test_hard_takes_top_ranks_after_the_positive_and_range_min():
    candidates = [Candidate(chunk=POSITIVE, score=0.9), *ranked(0.6, 0.5, 0.4, 0.3)]
    config = MiningConfig(num_negatives=2, range_min=1, relative_margin=None)
    picked = select_negatives(candidates, POSITIVE, 0.9, config)
    assert ids(picked) == ["c1", "c2"]
    assert picked.dropped == {"positive": 1, "range_min": 1}
    assert [negative.rank for negative in picked.negatives] == [1, 2]


def test_relative_margin_is_topk_percpos():
    config = MiningConfig(num_negatives=3, relative_margin=0.05)
    picked = select_negatives(ranked(0.79, 0.77, 0.75, 0.70, 0.60), POSITIVE, 0.8, config)
    assert ids(picked) == ["c2", "c3", "c4"]  # 0.8 * 0.95 = 0.76
    assert picked.dropped["relative_margin"] == 2
    # sign-safe: a negative positive score still demands negatives below it
    low = select_negatives(ranked(-0.1, -0.2, -0.3), POSITIVE, -0.2, config.model_copy(update={"num_negatives": 1}))
    assert ids(low) == ["c2"]


def test_score_rules_absolute_margin_max_and_min_score():
    config = MiningConfig(num_negatives=5, relative_margin=None, absolute_margin=0.1, max_score=0.65, min_score=0.3)
    picked = select_negatives(ranked(0.75, 0.69, 0.6, 0.4, 0.2), POSITIVE, 0.8, config)
    assert ids(picked) == ["c2", "c3"]
    assert picked.dropped == {"absolute_margin": 1, "max_score": 1, "min_score": 1}


def test_semi_hard_stays_between_pos_minus_margin_and_pos():
    config = MiningConfig(strategy="semi-hard", num_negatives=3, semi_hard_margin=0.1, relative_margin=None)
    picked = select_negatives(ranked(0.85, 0.8, 0.78, 0.72, 0.69, 0.5), POSITIVE, 0.8, config)
    assert ids(picked) == ["c2", "c3"]
    assert all(0.7 < n.score < 0.8 for n in picked.negatives)
    assert picked.dropped["semi_hard_window"] == 4


def test_random_samples_the_window_reproducibly():
    config = MiningConfig(strategy="random", num_negatives=3, range_min=2, range_max=10, relative_margin=None)
    candidates = ranked(*[0.9 - 0.05 * i for i in range(12)])
    first = select_negatives(candidates, POSITIVE, 0.95, config, rng=random.Random(7))
    again = select_negatives(candidates, POSITIVE, 0.95, config, rng=random.Random(7))
    assert ids(first) == ids(again) and len(first.negatives) == 3
    assert all(2 <= n.rank < 10 for n in first.negatives)
    assert [n.score for n in first.negatives] == sorted((n.score for n in first.negatives), reverse=True)


def test_each_guard_drops_and_counts_its_false_negative():
    candidates = [
        Candidate(chunk=ref("other-answer", "d1", 0, 10), score=0.70),
        Candidate(chunk=ref("copy", "d2", 0, 10, text=POSITIVE.text_hash), score=0.69),
        Candidate(chunk=ref("window", "dpos", 5, 15), score=0.68),
        Candidate(chunk=ref("near-dup", "d3", 0, 10), score=0.67, positive_cosine=0.99),
        Candidate(chunk=ref("test", "d4", 0, 10), score=0.66),
        Candidate(chunk=ref("test-text", "d5", 0, 10, text="h-held-out"), score=0.65),
        Candidate(chunk=ref("next-window", "dpos", 10, 20), score=0.64),  # touches, does not overlap
        Candidate(chunk=ref("fine", "d6", 0, 10), score=0.5),
    ]
    config = MiningConfig(num_negatives=5, relative_margin=None, near_duplicate_cosine=0.98)
    exclusions = Exclusions(chunk_ids=frozenset({"test"}), text_hashes=frozenset({"h-held-out"}))
    picked = select_negatives(
        candidates, POSITIVE, 0.8, config, other_positive_ids={"other-answer"}, exclusions=exclusions
    )
    assert ids(picked) == ["next-window", "fine"]
    assert picked.dropped == {
        "positive": 1,
        "same_text": 1,
        "overlapping_span": 1,
        "near_duplicate": 1,
        "test_chunk": 2,
    }
    assert picked.seen == len(candidates)


def test_too_few_survivors_are_reported_not_padded():
    picked = select_negatives(ranked(0.79, 0.5), POSITIVE, 0.8, MiningConfig(num_negatives=3))
    assert ids(picked) == ["c1"] and picked.eligible == 1


def test_window_smaller_than_num_negatives_is_one_line_error():
    with pytest.raises(MiningError, match=r"num_negatives \(8\) is larger than the window of 5") as error:
        check_window(MiningConfig(num_negatives=8, range_min=5, range_max=10))
    assert "\n" not in str(error.value)


# --------------------------------------------------------------------------- the stage on real text


def test_mine_tiny_run_writes_guarded_triplets(mined, minilm_model):
    tiny_run, result = mined
    rows = pq.read_table(tiny_run.triplets).to_pylist()
    splits = read_splits(tiny_run)
    chunks = {chunk.chunk_id: chunk for chunk in read_chunks(tiny_run.chunks)}
    test_chunks = {row["chunk_id"] for row in _split_rows(tiny_run, "test")}
    test_texts = {normalize_text(chunks[chunk_id].text) for chunk_id in test_chunks}

    assert result.index.embedded == len(chunks) and result.index.rebuilt == "new index"
    assert {row["pair_id"] for row in rows} == set(splits.train) | set(splits.val)
    assert {row["split"] for row in rows} == {"train", "val"}
    assert result.stats.negatives > 3 * len(rows)
    for row in rows:
        assert row["split"] == ("train" if row["pair_id"] in set(splits.train) else "val")
        positive_text = normalize_text(row["positive"])
        threshold = row["positive_score"] - abs(row["positive_score"]) * 0.05
        for negative_id, negative_text, score in negatives_of(row):
            assert negative_id != row["positive_id"]
            assert normalize_text(negative_text) != positive_text
            assert negative_id not in test_chunks and normalize_text(negative_text) not in test_texts
            assert score <= threshold + 1e-6

    # the positive's score is its cosine to the question, recomputed independently
    sample = rows[:5]
    queries = minilm_model.encode([row["anchor"] for row in sample], normalize_embeddings=True)
    positives = minilm_model.encode([row["positive"] for row in sample], normalize_embeddings=True)
    np.testing.assert_allclose([row["positive_score"] for row in sample], (queries * positives).sum(1), atol=1e-4)

    record = read_manifest(tiny_run)["stages"]["mine"]
    assert record["status"] == "done"
    assert record["counts"]["dropped_test_chunk"] > 0 and record["counts"]["pairs"] == len(rows)
    assert record["details"]["negative_score"]["count"] == result.stats.negatives
    assert "negatives per query" in result.summary()


def _split_rows(run: RunDir, name: str) -> list[dict]:
    return [json.loads(line) for line in run.split_file(name).read_text().splitlines() if line.strip()]


def test_overlapping_windows_of_one_document_are_never_negatives(tmp_path, minilm_model):
    """Chunk i covers contexts i and i+1 of one filing: its neighbours share text with it."""
    run = RunDir(tmp_path / "run").ensure()
    rows = financial_rows(400, stride=1)
    doc_rows = [row for row in rows if row["ticker"] == rows[0]["ticker"]][:12]
    contexts = [row["context"].strip() for row in doc_rows]
    offsets = np.cumsum([0] + [len(text) + 1 for text in contexts]).tolist()
    chunks, pairs = [], []
    for number in range(len(contexts) - 1):
        text = contexts[number] + " " + contexts[number + 1]
        chunk = Chunk(
            chunk_id=content_hash("filing", text),
            doc_id="filing",
            source="filing.txt",
            text=text,
            char_start=offsets[number],
            char_end=offsets[number] + len(text),
            n_tokens=len(text.split()),
        )
        chunks.append(chunk)
        pairs.append(Pair(pair_id=pair_id_for(chunk.chunk_id, doc_rows[number]["question"]), chunk_id=chunk.chunk_id, query=doc_rows[number]["question"]))
    for row in financial_rows(40, stride=97):  # other filings: the negatives that are allowed
        text = row["context"].strip()
        chunks.append(Chunk(chunk_id=content_hash("other", text), doc_id=row["ticker"], source="x", text=text, char_start=0, char_end=len(text), n_tokens=1))
    write_chunks(run.chunks, chunks)
    write_jsonl(run.pairs, pairs)
    config = RunConfig(mining=MiningConfig(num_negatives=3, relative_margin=None), split={"by": "chunk", "test_fraction": 0.2})
    result = run_mining(run, config, progress=False, model=minilm_model)
    span = {chunk.chunk_id: chunk for chunk in chunks}
    for row in pq.read_table(run.triplets).to_pylist():
        positive = span[row["positive_id"]]
        for negative_id, _, _ in negatives_of(row):
            negative = span[negative_id]
            assert not (
                negative.doc_id == positive.doc_id
                and negative.char_start < positive.char_end
                and positive.char_start < negative.char_end
            )
    assert result.stats.dropped["overlapping_span"] >= len(result.stats.positive_scores)  # every pair had a neighbour


def test_semi_hard_negatives_score_just_below_the_positive(mined_copy, minilm_model):
    result, table = mine(mined_copy, minilm_model, strategy="semi-hard", semi_hard_margin=0.2, relative_margin=None)
    found = 0
    for row in table.to_pylist():
        for _, _, score in negatives_of(row):
            assert row["positive_score"] - 0.2 < score < row["positive_score"]
            found += 1
    assert found > 20 and result.stats.dropped["semi_hard_window"] > 0


def test_triplet_format_has_one_row_per_negative(mined_copy, minilm_model):
    result, table = mine(mined_copy, minilm_model, output_format="triplet", num_negatives=2)
    assert table.column_names == [
        "pair_id", "split", "anchor", "positive", "positive_id", "positive_score",
        "negative", "negative_id", "negative_score",
    ]
    assert table.num_rows == result.stats.negatives
    assert all(row["negative_id"] != row["positive_id"] for row in table.to_pylist())


def test_rerun_reuses_the_index_and_embeds_only_changes(mined_copy, minilm_model):
    run = mined_copy
    pairs = [json.loads(line) for line in run.pairs.read_text().splitlines()]
    write_jsonl(run.pairs, pairs[:12])  # fewer questions to embed; the split files stay as they are
    chunks = read_chunks(run.chunks)
    version = _table_version(run)

    counting = CountingModel(minilm_model)
    again, _ = mine(run, counting)
    assert counting.documents == [] and again.index.reused == len(chunks) and again.index.rebuilt is None
    assert _table_version(run) == version  # not even rewritten

    edited = chunks[0].model_copy(update={"text": chunks[0].text + " (restated)"})
    extra = Chunk(chunk_id="extra", doc_id="new", source="new.txt", text="A brand new filing paragraph.", char_start=0, char_end=29, n_tokens=5)
    write_chunks(run.chunks, [edited, *chunks[1:], extra])
    changed, _ = mine(run, counting)
    assert sorted(counting.documents) == sorted([edited.text, extra.text])
    assert (changed.index.embedded, changed.index.rows) == (2, len(chunks) + 1)

    write_chunks(run.chunks, [edited, *chunks[1:]])
    counting.documents.clear()
    shrunk, _ = mine(run, counting)
    assert counting.documents == [] and shrunk.index.removed == 1 and shrunk.index.rows == len(chunks)


def _table_version(run: RunDir) -> int:
    model_id = json.loads((run.index_dir / "domainfit_index.json").read_text())["model"]
    index, reason = ChunkIndex.open(run.index_dir, model_id=model_id, dim=384)
    assert reason is None
    return index.table.version


def test_other_model_or_vector_size_rebuilds_the_index(tmp_path):
    vectors = _unit_vectors(20, 8, seed=1)
    refs = [ref(f"c{i}") for i in range(20)]
    index, reason = ChunkIndex.open(tmp_path / "index", model_id="model-a", dim=8)
    assert reason == "new index"
    index.add(refs, vectors)
    reopened, reason = ChunkIndex.open(tmp_path / "index", model_id="model-a", dim=8)
    assert reason is None and reopened.rows == 20
    other, reason = ChunkIndex.open(tmp_path / "index", model_id="model-b", dim=8)
    assert reason == "model changed" and other.rows == 0
    other.add(refs, vectors)
    wider, reason = ChunkIndex.open(tmp_path / "index", model_id="model-b", dim=16)
    assert reason == "vector size changed (8 -> 16)" and wider.rows == 0
    with pytest.raises(MiningError, match="query vectors have size 8 but the index .* holds size 16"):
        wider.search(vectors[:2], limit=3)


# --------------------------------------------------------------------------- ANN vs flat


def _unit_vectors(rows: int, dim: int, seed: int, centers: int = 40, spread: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    middle = rng.standard_normal((centers, dim)).astype(np.float32)
    vectors = middle[rng.integers(0, centers, rows)] + spread * rng.standard_normal((rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("ann_index", ["IVF_PQ", "IVF_HNSW_SQ"])
def test_ann_index_finds_the_same_negatives_as_flat_search(tmp_path, ann_index):
    vectors = _unit_vectors(3000, 64, seed=3)
    refs = [ref(f"c{i}", f"d{i // 10}", (i % 10) * 100, (i % 10) * 100 + 100) for i in range(3000)]
    rng = np.random.default_rng(4)
    picked = rng.choice(3000, 60, replace=False)
    queries = vectors[picked] + 0.3 * rng.standard_normal((60, 64)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    positives = [refs[i] for i in picked]
    found = {}
    for name, min_rows in (("flat", 10**9), ("ann", 1000)):
        config = MiningConfig(
            ann_min_rows=min_rows, ann_index=ann_index, ann_partition_rows=256, nprobes=2,
            ann_target_recall=1.0, range_max=30, num_negatives=5,
        )
        index, _ = ChunkIndex.open(tmp_path / name, model_id="random", dim=64)
        index.add(refs, vectors)
        assert index.ensure_ann(config) is (name == "ann")
        outcome = mine_negatives(index, queries, positives, config, progress=False)
        found[name] = [ids(selection) for selection in outcome.selections]
        if name == "ann":
            assert outcome.ann is not None and outcome.ann.recall >= 0.99 and outcome.ann.num_partitions > 1
            assert index.table.list_indices()
    assert found["ann"] == found["flat"]
    assert sum(len(negatives) for negatives in found["flat"]) > 3 * 60


# --------------------------------------------------------------------------- bad input and the CLI


def test_bad_inputs_are_one_line_mining_errors(tiny_run, tmp_path):
    # each is caught before the model is loaded, so none of these runs embeds anything
    rows = [json.loads(line) for line in tiny_run.pairs.read_text().splitlines()]
    rows[3]["chunk_id"] = "no-such-chunk"
    broken = RunDir(tmp_path / "broken").ensure()
    shutil.copy(tiny_run.chunks, broken.chunks)
    write_jsonl(broken.pairs, rows)
    with pytest.raises(MiningError, match=r"1 pair\(s\) .* point at chunk ids not in .*no-such-chunk") as error:
        run_mining(broken, RunConfig(), progress=False)
    assert "\n" not in str(error.value)

    write_chunks(broken.chunks, [])
    with pytest.raises(MiningError, match="holds no chunks"):
        run_mining(broken, RunConfig(), progress=False)

    with pytest.raises(MiningError, match="larger than the window"):
        run_mining(tiny_run, RunConfig(mining=MiningConfig(num_negatives=60)), progress=False)


def test_cli_mine_on_a_run_dir(mined_copy, capsys):
    from domainfit.cli import main

    tiny_run = mined_copy
    with pytest.raises(SystemExit) as done:
        main(["mine", str(tiny_run.root), "--num-negatives", "2", "--strategy", "hard"])
    assert done.value.code in (0, None)
    out = capsys.readouterr().out
    assert "mined" in out and "negatives per query" in out
    table = pq.read_table(tiny_run.triplets)
    assert "negative_2_id" in table.column_names and "negative_3_id" not in table.column_names

    with pytest.raises(SystemExit) as failed:
        main(["mine", str(tiny_run.root), "--num-negatives", "99"])
    assert failed.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "larger than the window" in err and "\n" not in err


@pytest.mark.slow
def test_a_two_process_pool_mines_the_same_negatives(mined, tmp_path, minilm_model):
    """``encode.processes = 2``: the index and the questions are encoded by a pool; same triplets."""
    from domainfit.config import EncodeConfig

    _, single = mined
    run = run_from_rows(tmp_path / "run", financial_rows(120))
    config = RunConfig(mining=MiningConfig(num_negatives=4), encode=EncodeConfig(processes=2, pool_min_texts=0))
    pooled = run_mining(run, config, progress=False, model=minilm_model)
    by_pair = {row["pair_id"]: row for row in pq.read_table(mined[0].triplets).to_pylist()}
    rows = pq.read_table(run.triplets).to_pylist()
    assert pooled.rows == single.rows and len(rows) == len(by_pair)
    for row in rows:
        ours, theirs = negatives_of(row), negatives_of(by_pair[row["pair_id"]])
        assert [found[0] for found in ours] == [found[0] for found in theirs]
        np.testing.assert_allclose([found[2] for found in ours], [found[2] for found in theirs], atol=1e-6)
