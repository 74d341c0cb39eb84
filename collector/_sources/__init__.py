"""Sources besides the API: the public t.me/s web preview (``web``) and Telegram Desktop exports
(``export_import``). The I/O lives here; the parsing is pure, in :mod:`collector._parse`."""
