"""Sphinx configuration of the ngshare documentation.

The pages are the Markdown files of this folder, read by MyST as they are.
Build (warnings are errors, as in CI):

    python3 -m pip install -e ".[docs]"
    python3 -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSION_FILE = HERE.parent / 'ngshare' / 'version.py'

project = 'ngshare'
author = 'the ngshare developers'
copyright = 'the ngshare developers'  # noqa: A001 (Sphinx's name)
release = re.search(
    r"__version__\s*=\s*'([^']+)'", VERSION_FILE.read_text(encoding='utf-8')
).group(1)
version = release

extensions = ['myst_parser']
source_suffix = {'.md': 'markdown'}
root_doc = 'index'
exclude_patterns = ['_build', 'Thumbs.db', '.DS_Store']

# Headings up to ### get anchors, so that [text](page.md#a-heading) links
# resolve and are checked.
myst_heading_anchors = 3
myst_enable_extensions = ['colon_fence', 'deflist']

html_theme = 'furo'
html_title = f'ngshare {release}'
html_static_path: list[str] = []
pygments_style = 'sphinx'


# Links from a page to files of the repository outside docs/ (such as the
# example configurations under ../testing/) have no page on the site: they
# are shown as their text. A link to a path that does not exist is left to
# MyST, which reports it (an error with -W).
def _repository_paths(app):
    from sphinx.addnodes import pending_xref
    from sphinx.transforms.post_transforms import SphinxPostTransform

    class RepositoryPaths(SphinxPostTransform):
        default_priority = 5  # before MyST resolves its references (9)

        def run(self, **kwargs):
            here = Path(self.env.doc2path(self.env.docname)).parent
            for node in list(self.document.findall(pending_xref)):
                target = node.get('reftarget', '')
                if (
                    node.get('reftype') == 'myst'
                    and target.startswith('../')
                    and (here / target).resolve().exists()
                ):
                    node.replace_self(node.children)

    app.add_post_transform(RepositoryPaths)


def setup(app):
    _repository_paths(app)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
