"""ngshare: the nbgrader exchange service for JupyterHub."""

from .version import __version__

__all__ = ['__version__']
