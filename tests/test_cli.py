"""The CLI: five verbs, a version, a masked --print-config, one-line config errors."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from domainfit.cli import app

runner = CliRunner()


def test_help_lists_every_verb():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for verb in ("synth", "review", "mine", "train", "eval", "run"):
        assert verb in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and "domainfit" in result.output


def test_print_config_masks_the_key():
    result = runner.invoke(app, ["run", "--print-config"], env={"OPENAI_API_KEY": "sk-topsecret-abcd1234"})
    assert result.exit_code == 0
    assert "topsecret" not in result.output and "[train]" in result.output


def test_unknown_key_fails_with_one_line(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text("[train]\nlossy = 1\n")
    completed = subprocess.run(
        [sys.executable, "-m", "domainfit.cli", "run", "--config", str(config), "--print-config"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "train.lossy" in lines[0]
    assert "Traceback" not in completed.stderr
