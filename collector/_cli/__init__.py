"""The ``tgspread`` command: ``app.py`` holds the app and its explicit list of commands, one module per command,
``common.py`` what they share (exit codes, one-line errors, consoles, common options), ``progress.py`` the
live display of a collection pass. The console script is ``collector._cli.app:app``.
"""
