"""Config: TOML + environment + flags fill one validated RunConfig."""

from __future__ import annotations

import pytest

from domainfit.config import RunConfig, dump_toml, load_config, mask_secret, read_toml
from domainfit.errors import ConfigError


def write(tmp_path, text: str):
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_valid_and_offline():
    config = load_config(environ={})
    assert config.base_model == "minilm"
    assert config.llm.is_local
    assert config.train.loss == "cached-mnrl"
    assert config.split.by == "document"


def test_toml_sections_fill_stage_configs(tmp_path):
    path = write(tmp_path, '[train]\nepochs = 2\nloss = "mnrl"\n[mining]\nnum_negatives = 5\n')
    config = load_config(path, environ={})
    assert (config.train.epochs, config.train.loss, config.mining.num_negatives) == (2, "mnrl", 5)


def test_flags_override_file_and_none_flags_do_not(tmp_path):
    path = write(tmp_path, "[train]\nepochs = 2\nbatch_size = 16\n")
    config = load_config(path, {"train.epochs": 5, "train.batch_size": None}, environ={})
    assert config.train.epochs == 5
    assert config.train.batch_size == 16


def test_environment_fills_llm_endpoint_and_key():
    config = load_config(environ={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "sk-secret-123456"})
    assert config.llm.base_url == "http://127.0.0.1:9/v1"
    assert config.llm.api_key.get_secret_value() == "sk-secret-123456"
    assert not config.llm.is_local


def test_unknown_key_is_one_line_naming_it(tmp_path):
    path = write(tmp_path, "[train]\nlossy = 1\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    message = str(error.value)
    assert "train.lossy" in message and "\n" not in message
    assert "loss" in message  # lists the known keys


def test_unknown_section_is_named(tmp_path):
    with pytest.raises(ConfigError, match="'trian'"):
        load_config(write(tmp_path, "[trian]\nepochs = 1\n"), environ={})


def test_bad_value_names_key_and_expectation(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, '[train]\nloss = "focal"\n'), environ={})
    assert "train.loss" in str(error.value) and "'focal'" in str(error.value)


def test_cross_field_rule_is_reported(tmp_path):
    path = write(tmp_path, "[synth]\nchunk_max_tokens = 50\nchunk_overlap_tokens = 60\n")
    with pytest.raises(ConfigError, match="chunk_overlap_tokens"):
        load_config(path, environ={})


def test_invalid_toml_names_the_file(tmp_path):
    path = write(tmp_path, "[train\nepochs = 1\n")
    with pytest.raises(ConfigError, match="run.toml"):
        read_toml(path)


def test_dump_masks_the_key_and_round_trips(tmp_path):
    config = load_config(environ={"OPENAI_API_KEY": "sk-verysecretvalue-9876"})
    text = dump_toml(config)
    assert "verysecret" not in text and 'api_key = "…9876"' in text
    reloaded = load_config(write(tmp_path, text.replace('api_key = "…9876"\n', "")), environ={})
    assert reloaded.model_dump(exclude={"llm": {"api_key"}}) == config.model_dump(exclude={"llm": {"api_key"}})


def test_a_masked_key_shows_at_most_its_last_four_characters():
    assert mask_secret("sk-proj-abcdefgh-123") == "…-123"
    assert mask_secret("short-key") == "***"


def test_a_config_path_that_is_a_folder_or_not_utf8_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path, environ={})
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('base_model = "modèle"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(latin1, environ={})


@pytest.mark.parametrize("url", ["not a url", "http://[::1", "ftp://example.com/v1", "http://:80/v1", "localhost:8000"])
def test_an_llm_base_url_that_is_not_an_http_url_is_refused(url):
    with pytest.raises(ConfigError, match="llm.base_url"):
        load_config(overrides={"llm.base_url": url}, environ={})


def test_section_hash_changes_only_with_its_section():
    config = RunConfig()
    before = config.section_hash("train")
    config.mining.num_negatives = 7
    assert config.section_hash("train") == before
    config.train.epochs = 9
    assert config.section_hash("train") != before


def test_public_dict_never_holds_the_secret():
    config = load_config(environ={"OPENAI_API_KEY": "sk-abcdefghijklmnop"})
    assert "abcdefghijklmnop" not in str(config.public_dict())


def test_readme_documents_every_key_with_its_default():
    from pathlib import Path

    from domainfit.config import config_reference

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert config_reference() in readme, "README's config table is stale: paste domainfit.config.config_reference()"
