"""The CLI: five verbs, a version, a masked --print-config, one-line config errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
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
    assert 'api_key = "…1234"' in result.output  # at most the last 4 characters


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


def _cli(*args: str):
    from domainfit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "{missing}", "--out", "{out}"], "document folder not found"),
        (["synth", "{missing}", "--out", "{out}", "--llm-base-url", "http://127.0.0.1:1/v1", "--llm-model", "x"],
         "document folder not found"),
        (["train", "{out}"], "run directory not found"),
        (["mine", "{out}"], "missing artifact"),
        (["eval", "{out}"], "missing artifact"),
    ],
    ids=["run", "synth", "train", "mine", "eval"],
)
def test_an_input_that_does_not_exist_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "R"
    filled = [arg.format(missing=tmp_path / "no" / "such" / "dir", out=out) for arg in args]
    assert _cli(*filled) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda path: path.mkdir(), "is a folder"),
        (lambda path: path.write_bytes('[train]\nloss = "mnrl" # é\n'.encode("latin-1")), "not UTF-8"),
    ],
    ids=["folder", "latin-1"],
)
def test_a_config_that_is_a_folder_or_not_utf8_is_one_line(tmp_path, capsys, make, message):
    config = tmp_path / "run.toml"
    make(config)
    assert _cli("run", "--config", str(config), "--print-config") == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and message in err[0]


@pytest.mark.parametrize("url", ["not a url", "http://[::1"])
def test_a_bad_llm_base_url_is_one_line_before_any_work(tmp_path, capsys, url):
    assert _cli("synth", str(tmp_path), "--out", str(tmp_path / "R"), "--llm-base-url", url, "--llm-model", "x") == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "llm.base_url" in err[0]
    assert not (tmp_path / "R").exists()
