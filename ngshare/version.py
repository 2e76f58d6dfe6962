"""Single source of the package version (read by pyproject.toml)."""

__version__ = '1.0.0.dev0'
