"""The ``tealign`` command line: a thin Typer layer over :mod:`tealign.api`.

One module per command group (``data``: info, convert, e0 and the dataset registry;
``align``: fit, align, merge; ``train``: train, eval; ``bench``; ``compute``; ``report``:
report and demo). Each command parses its options, calls the API and renders the result;
numbers and file formats live in the library.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tealign import __version__
from tealign.cli import (  # noqa: F401 (commands)
    align,
    bench,
    cards,
    compute,
    data,
    report,
    train,
)
from tealign.cli._common import app

__all__ = ["app"]


@app.callback(invoke_without_command=True)
def main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")]
    = False,
) -> None:
    if version:
        print(f"tealign {__version__}")
        raise typer.Exit(0)


if __name__ == "__main__":  # pragma: no cover
    app()
