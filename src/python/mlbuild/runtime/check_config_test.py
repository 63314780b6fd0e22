from pathlib import Path

from mlbuild.runtime.check_config import main


def test_a_valid_config_passes(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text("hyperparameters:\n  max_depth: {type: int, default: 3}\n")
    assert main([str(config)]) == 0


def test_a_typo_names_the_file_and_exits_2(tmp_path: Path, capsys) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text("hyperparameters:\n  max_depth: {type: int, default: 3\n")
    assert main([str(config)]) == 2
    assert f"{config}: malformed YAML at line" in capsys.readouterr().err
