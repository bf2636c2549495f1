"""``python -m tealign`` runs the command line (the same as the ``tealign`` script)."""

from tealign.cli import app

app()
