from pathlib import Path

from mlbuild.commands import reference


def test_the_committed_reference_is_what_the_code_renders() -> None:
    committed = Path(reference.REFERENCE_PATH).read_text() if Path(reference.REFERENCE_PATH).is_file() else ""
    assert committed == reference.render(), (
        f"{reference.REFERENCE_PATH} differs from the commands' parsers. Fix: regenerate it from the repo root with\n"
        f"    {reference.REGENERATE}\nand commit the result."
    )


def test_the_reference_names_every_verb_flag_and_exit_code() -> None:
    text = reference.render()
    assert "## replay" in text and "| `--allow-insecure-http` |" in text and "| 130 | interrupted (Ctrl-C) |" in text
    assert "## lock-debian" in text and "  ./pants mlbuild lock-debian --output" in text
