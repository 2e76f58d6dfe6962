"""Command blocks of the documentation, run by the tests as written.

A page marks each block the tests run with an HTML comment,
``<!-- tested: NAME -->``, on the line before its fence (docs/deploying.md's
backup and restore, docs/test-hub.md's recipe). The blocks are read from the
page itself, not copied into the tests, so a page cannot drift from what is
tested: a block that is edited is run as edited, one that disappears fails
the test. Shell blocks run with ``bash -euo pipefail`` (a failing command,
such as ``ngshare-admin verify`` finding a bad file, fails the whole step),
with the page's variables set in the environment instead of its example
values, and with this interpreter's ``bin`` (``python3``, ``ngshare-admin``)
and PostgreSQL's client programs first on ``PATH``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path

from _postgres import PG_BIN
from _servers import REPO_ROOT, ngshare_env

__all__ = ['DOCS', 'doc_blocks', 'run_blocks']

DOCS = REPO_ROOT / 'docs'
_BLOCK = re.compile(
    r'^[ \t]*<!-- tested: ([\w-]+) -->[ \t]*\n[ \t]*```\w+\n(.*?)^[ \t]*```',
    re.MULTILINE | re.DOTALL,
)


def doc_blocks(page: Path) -> dict[str, str]:
    """``{name: text}`` of the page's tested blocks, dedented."""
    blocks: dict[str, str] = {}
    for name, body in _BLOCK.findall(page.read_text('utf-8')):
        assert name not in blocks, f'two blocks named {name} in {page}'
        blocks[name] = textwrap.dedent(body)
    return blocks


def run_blocks(
    page: Path,
    names: Iterable[str],
    variables: Mapping[str, str],
    *,
    replace: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """Run the page's shell blocks ``names`` one after the other in one
    shell; ``replace`` changes example values the blocks spell out (such as
    the Hub's address) into the test's."""
    blocks = doc_blocks(page)
    names = list(names)
    missing = [name for name in names if name not in blocks]
    assert not missing, f'{page} has no tested block {missing}'
    script = '\n'.join(blocks[name] for name in names)
    for example, actual in (replace or {}).items():
        assert example in script, f'{example!r} not in the blocks {names}'
        script = script.replace(example, actual)
    path = os.pathsep.join(
        [os.path.dirname(sys.executable), PG_BIN, os.environ.get('PATH', '')]
    )
    return subprocess.run(
        ['bash', '-euo', 'pipefail', '-c', script],
        env=ngshare_env({**variables, 'PATH': path}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
