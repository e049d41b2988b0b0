"""Training as a user runs it, in subprocesses: kill and resume, and torchrun on two CPU processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from domainfit.artifacts import RunDir, read_json, read_jsonl, stage_record
from domainfit.train.checkpoints import checkpoint_step, last_complete_checkpoint
from train_support import TINY_DIM, build_tiny_model

pytestmark = pytest.mark.slow

ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",  # two cores shared by many processes: one thread each is much faster
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONUNBUFFERED": "1",
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def write_config(path: Path, model: Path, **train) -> Path:
    lines = [f'base_model = "{model}"', "[train]", "logging_steps = 1", "learning_rate = 1e-3"]
    lines += [f"{key} = {value!r}" if not isinstance(value, str) else f'{key} = "{value}"' for key, value in train.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def train_command(run: RunDir, config: Path) -> list[str]:
    return [sys.executable, "-m", "domainfit.cli", "train", str(run.root), "--config", str(config), "--no-progress"]


def test_a_killed_training_resumes_from_its_last_complete_checkpoint(tiny_run, tiny_model, tmp_path):
    total_steps = 30
    config = write_config(tmp_path / "run.toml", tiny_model, max_steps=total_steps, save_steps=3, loss="mnrl")
    command = train_command(tiny_run, config)
    with open(tmp_path / "first.log", "wb") as log:
        first = subprocess.Popen(command, env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 240
        while last_complete_checkpoint(tiny_run.checkpoints_dir) is None:
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert not tiny_run.model_dir.exists()
    assert stage_record(tiny_run, "train").status == "running"  # killed, not finished
    resume_point = last_complete_checkpoint(tiny_run.checkpoints_dir)
    resumed_step = checkpoint_step(resume_point)
    assert 0 < resumed_step < total_steps

    train_log = tiny_run.root / "logs" / "train.log"
    lines_before = len(train_log.read_text(encoding="utf-8").splitlines()) if train_log.exists() else 0
    second = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resumed from {resume_point.name} ({total_steps - resumed_step} steps this run)" in second.stdout
    # the re-run logged a loss only for the steps it trained, not from step 1 again
    appended = [json.loads(line) for line in train_log.read_text(encoding="utf-8").splitlines()[lines_before:]]
    logged = [entry["step"] for entry in appended if "loss" in entry]
    assert logged == list(range(resumed_step + 1, total_steps + 1))
    record = stage_record(tiny_run, "train")
    assert record.status == "done" and record.counts["steps"] == total_steps
    assert record.details["resumed_from"] == resume_point.name
    from sentence_transformers import SentenceTransformer

    assert SentenceTransformer(str(tiny_run.model_dir), truncate_dim=64).encode(["q"]).shape == (1, 64)


def test_torchrun_with_two_cpu_processes_trains_one_model(tiny_run, tiny_model, tmp_path):
    config = write_config(tmp_path / "run.toml", tiny_model, loss="mnrl", epochs=2.0, batch_size=16)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        *train_command(tiny_run, config)[2:],
    ]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert done.stdout.count("trained ") == 1  # only rank 0 reports (and writes)
    info = read_json(tiny_run.model_dir / "domainfit_training.json")
    assert info["world_size"] == 2 and info["dims"] == [TINY_DIM, 64]
    # MNRL ranked each process's queries against both processes' documents
    assert info["loss_config"]["name"] == "MultipleNegativesRankingLoss"
    assert info["loss_config"]["gather_across_devices"] is True
    assert "gathered across devices" in (tiny_run.model_dir / "README.md").read_text(encoding="utf-8")
    from sentence_transformers import SentenceTransformer

    for dim in (TINY_DIM, 64):
        assert SentenceTransformer(str(tiny_run.model_dir), truncate_dim=dim).encode(["q", "d"]).shape == (2, dim)


def test_torchrun_with_two_cpu_processes_trains_with_distillation_from_the_base(tiny_run, tiny_model, tmp_path):
    config = write_config(tmp_path / "run.toml", tiny_model, epochs=1.0, batch_size=16, base_distillation=1.0)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
               *train_command(tiny_run, config)[2:]]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    info = read_json(tiny_run.model_dir / "domainfit_training.json")
    assert info["world_size"] == 2 and "distillation from the base model" in info["loss"]
    logged = [entry for entry in read_jsonl(tiny_run.root / "train_log.jsonl") if "loss" in entry]
    assert logged and all("distillation" in entry for entry in logged)
