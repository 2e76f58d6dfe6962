"""``vngshare`` / ``python -m ngshare.vngshare``: the stand-alone mode.

The same as ``python -m ngshare --vngshare``: the caller is whoever the
``user`` parameter names, debug is on, and no JupyterHub is needed. For
development and tests only.
"""

from __future__ import annotations

import sys

from .cli import main as ngshare_main


def main(argv: list[str] | None = None) -> None:
    arguments = list(sys.argv[1:] if argv is None else argv)
    ngshare_main(['--vngshare', *arguments])


if __name__ == '__main__':
    main()
