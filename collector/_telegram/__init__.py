"""Everything that talks to Telegram, always through a caller-supplied ``TelegramClient``.

``calls`` (flood waits and retries, in one place), ``collect`` (a collection pass), ``comments``, ``media``,
``discovery``, ``login`` (sessions) and ``client`` (the one factory a command asks for its client).
"""
