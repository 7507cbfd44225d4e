"""The trainer's typed config: `TrainConfig`, and `train.overrides` / `continual.overrides` in the
pipeline config — a typo is a config error naming the key (exit code 2 from the CLI), only the given
fields override the preset, and dumped configs validate back to the same overrides (CPU, seconds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from kurate.flows.cli import app
from kurate.flows.config import ConfigError, PipelineConfig, load_config
from kurate.flows.train import trainer_config
from kurate.models.architectures import MODEL_KINDS, PRESETS
from kurate.models.train_config import TrainConfig, preset


def _error(overrides: list[str] | None = None, path: Path | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides or [], {"root": "unused"})
    return str(info.value)


@pytest.mark.parametrize("key", ["train.overrides.max_stpes", "continual.overrides.warmup_stpes",
                                 "train.overrides.model_options.d_modle"])
def test_a_typo_under_overrides_names_the_key(key):
    assert f"{key}: unknown key" in _error([f"{key}=3"])


def test_a_typo_in_a_yaml_file_names_the_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("root: r\ntrain:\n  model: bpe\n  overrides: {max_steps: 5, lr_warmup: 3}\n"
                    "continual:\n  overrides:\n    learning_rate: 0.1\n")
    message = _error(path=path)
    assert "train.overrides.lr_warmup: unknown key" in message
    assert "continual.overrides.learning_rate: unknown key" in message  # every bad key, not only the first


def test_model_options_are_checked_against_the_chosen_kind():
    # vocab_size is a BPE field: the HAT run does not take it, the BPE run does
    assert "train.overrides.model_options.vocab_size: unknown key" in _error(
        ["train.model=hat", "train.overrides.model_options.vocab_size=512"])
    cfg = load_config(None, ["train.model=bpe", "train.overrides.model_options.vocab_size=512"], {"root": "r"})
    assert trainer_config(cfg.train).model_hparams().vocab_size == 512
    # continued training keeps the checkpoint's model: no model options, no other starting point
    assert "continual.overrides.model_options: unknown key" in _error(["continual.overrides.model_options={d_model: 8}"])
    assert "continual.overrides.init_from: unknown key" in _error(["continual.overrides.init_from=x"])


def test_bad_values_name_the_key():
    assert "train.overrides.max_steps: Input should be greater than or equal to 1" in _error(["train.overrides.max_steps=0"])
    assert "train.overrides.max_steps: Input should be a valid integer" in _error(["train.overrides.max_steps=null"])
    assert "train.overrides.model_options.n_layer: Input should be a valid integer" in _error(
        ["train.overrides.model_options.n_layer=two"])
    assert "train.model: Input should be" in _error(["train.model=gpt"])
    # a field whose own value may be null takes null
    cfg = load_config(None, ["train.overrides.peak_flops=null"], {"root": "r"})
    assert cfg.train.overrides.given() == {"peak_flops": None}


def test_only_the_given_fields_override_the_preset():
    cfg = load_config(None, ["train.model=tfree", "train.preset=tiny", "train.overrides.max_steps=3",
                             "train.overrides.model_options.d_model=64"], {"root": "r"})
    assert cfg.train.overrides.given() == {"max_steps": 3, "model_options": {"d_model": 64}}
    got, ref = trainer_config(cfg.train), preset("tiny", "tfree")
    assert got.max_steps == 3 and got.lr == ref.lr and got.seq_len == ref.seq_len
    # model options merge into the preset's geometry
    assert got.model_options == {**ref.model_options, "d_model": 64}
    # continual: the default overrides, replaced as a whole by the given ones
    assert load_config(None, [], {"root": "r"}).continual.overrides.given() == {"max_steps": 100, "warmup_steps": 5}
    assert load_config(None, ["continual.overrides={lr: 0.001}"], {"root": "r"}).continual.overrides.given() == {"lr": 0.001}


def test_dumped_configs_validate_back_to_the_same_overrides():
    """The Ray Train payload and the Ray Job spec are dumps: fields never given must stay unset."""
    cfg = load_config(None, ["train.overrides.max_steps=3", "continual.overrides={lr: 0.001}"], {"root": "r"})
    dumped = cfg.model_dump(mode="json")
    assert dumped["train"]["overrides"] == {"max_steps": 3} and dumped["continual"]["overrides"] == {"lr": 0.001}
    back = PipelineConfig.model_validate_json(cfg.model_dump_json())
    assert back == cfg and back.train.overrides.given() == {"max_steps": 3}
    assert trainer_config(back.train) == trainer_config(cfg.train)


def test_train_config_forbids_unknown_fields():
    with pytest.raises(ValidationError, match="max_stpes"):
        preset("tiny", "hat", max_stpes=3)
    with pytest.raises(ValidationError, match="model_options.d_modle"):
        preset("tiny", "bpe", model_options={"d_modle": 3})
    with pytest.raises(ValidationError, match="lr_warmup"):
        preset("tiny", "hat").replace(lr_warmup=3)
    cfg = TrainConfig.model_validate(preset("tiny", "hat").model_dump(mode="json"))  # as read from config.json
    assert cfg == preset("tiny", "hat")


def test_cli_exits_2_on_a_typo(tmp_path):
    result = CliRunner().invoke(app, ["train", "--root", str(tmp_path), "--set", "train.overrides.max_stpes=3"])
    assert result.exit_code == 2 and "train.overrides.max_stpes: unknown key" in result.output
    result = CliRunner().invoke(app, ["continual", "--root", str(tmp_path), "--set", "continual.overrides.lrr=0.1"])
    assert result.exit_code == 2 and "continual.overrides.lrr: unknown key" in result.output


def test_the_installed_command_exits_2_on_a_yaml_typo(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  overrides:\n    max_stpes: 3\n")
    kurate = str(Path(sys.executable).with_name("kurate"))
    done = subprocess.run([kurate, "train", "--root", str(tmp_path), "--config", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "train.overrides.max_stpes: unknown key" in done.stderr, done.stderr[-2000:]


def test_cli_choices_come_from_the_registry():
    help_text = CliRunner().invoke(app, ["train", "--help"], terminal_width=200).output
    assert all(name in help_text for name in [*MODEL_KINDS, *PRESETS])
    result = CliRunner().invoke(app, ["train", "--root", "r", "--model", "gpt"])
    assert result.exit_code == 2 and "gpt" in result.output
