"""The shape every refused command has (issue 18): exit status 2, nothing on stdout, one
`tegel: error:` line on stderr."""

from __future__ import annotations

import pytest

from tegel.cli import main


def fails(capsys: pytest.CaptureFixture[str], argv: list[str], *words: str) -> str:
    """Run a command that must fail that way; its error line names each of `words`."""
    try:
        rc = main(argv)
    except SystemExit as exit_:  # argparse refuses a flag's value
        rc = exit_.code  # type: ignore[assignment]
    out, err = capsys.readouterr()
    assert rc == 2, (argv, out, err)
    assert out == ""
    assert err.startswith("tegel: error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err, (word, err)
    return err
