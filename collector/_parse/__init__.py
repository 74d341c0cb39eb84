"""Pure functions, no I/O: Telegram objects, web preview pages and Desktop export JSON in, archive rows out.

Also the rules that need no archive: channel references, when a post is due for a refresh, media file names,
the ranking of discovery candidates. Canonical URLs live in :mod:`analysis._urls` (analysis needs them too).
"""
