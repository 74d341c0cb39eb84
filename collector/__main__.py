"""``python -m collector``: the ``tgspread`` command, for environments where the script is not on PATH."""

from collector._cli.app import app

app(prog_name="tgspread")
