"""tgspread's version (recorded in the archive with every migration and run)."""

__version__ = "0.1.0"
