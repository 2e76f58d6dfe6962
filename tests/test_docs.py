"""The documentation matches the code: every command-line flag of ``--help``
is documented in ``docs/cli.md`` and every flag there exists; every route of
``API_ROUTES`` is in ``docs/api.md``; and the Sphinx site builds without a
warning.
"""

from __future__ import annotations

import html
import importlib.util
import re
import shlex
import subprocess
import sys

import pytest
from _servers import REPO_ROOT, run_ngshare
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ngshare.app import API_ROUTES

DOCS = REPO_ROOT / 'docs'
FLAG = re.compile(r'(?<![\w-])(--[a-z][a-z0-9_-]*[a-z0-9]|-h)(?![\w-])')
ADMIN_COMMANDS = [
    ('gc',),
    ('verify',),
    ('upgrade',),
    ('deleted', 'list'),
    ('deleted', 'restore'),
    ('deleted', 'purge'),
    ('storage', 'copy'),
]


def help_flags(module: str, *args: str) -> set[str]:
    """The flags a ``--help`` prints (its usage lines and option list)."""
    done = run_ngshare([*args, '--help'], module=module)
    assert done.returncode == 0, done.output
    assert 'usage:' in done.stdout
    # The usage block names every flag; the option list repeats them with
    # help texts, which may mention other flags ("with --vngshare ..."), so
    # only the option names at the start of its lines count.
    usage, _, options = done.stdout.partition('\n\n')
    flags = set(FLAG.findall(usage))
    for line in options.splitlines():
        stripped = line.strip()
        if stripped.startswith('-'):
            flags |= set(FLAG.findall(re.split(r'\s{2,}', stripped)[0]))
    return flags


def sections(markdown: str, level: str) -> dict[str, str]:
    """``{heading: text up to the next heading of that level or higher}``."""
    result = {}
    pattern = re.compile(rf'^{level} (.+)$', re.MULTILINE)
    matches = list(pattern.finditer(markdown))
    for match, following in zip(matches, matches[1:] + [None]):
        end = following.start() if following else len(markdown)
        text = markdown[match.end() : end]
        higher = re.search(rf'^#{{1,{len(level) - 1}}} ', text, re.MULTILINE)
        if higher:
            text = text[: higher.start()]
        result[match.group(1).replace('`', '').strip()] = text
    return result


def doc_flags(text: str) -> set[str]:
    return set(FLAG.findall(text))


@pytest.fixture(scope='module')
def cli_md() -> str:
    return (DOCS / 'cli.md').read_text(encoding='utf-8')


@pytest.fixture(scope='module')
def all_help_flags() -> set[str]:
    flags = help_flags('ngshare') | help_flags('ngshare.admin')
    for command in ADMIN_COMMANDS:
        flags |= help_flags('ngshare.admin', *command)
    flags |= help_flags('ngshare.admin', 'deleted')
    return flags


def test_help_parser_sees_the_flags():
    """The parser above is not vacuous."""
    flags = help_flags('ngshare')
    assert {'--database', '--admins', '--no-upgrade-db', '--max-body-size'} <= flags
    assert {'--jupyterhub_api_url', '--version', '-h', '--help'} <= flags
    assert help_flags('ngshare.admin', 'gc') >= {'--delete', '--grace-seconds'}


def test_every_service_flag_is_documented(cli_md):
    service = sections(cli_md, '##')['ngshare (python3 -m ngshare)']
    missing = help_flags('ngshare') - doc_flags(service)
    assert not missing, f'flags of python -m ngshare missing in docs/cli.md: {missing}'


def test_every_admin_flag_is_documented(cli_md):
    admin = sections(cli_md, '##')['ngshare-admin']
    commands = sections(admin, '###')
    missing = help_flags('ngshare.admin') - doc_flags(admin)
    assert not missing, f'ngshare-admin flags missing in docs/cli.md: {missing}'
    for command in ADMIN_COMMANDS:
        title = 'ngshare-admin ' + ' '.join(command)
        assert title in commands, f'docs/cli.md has no section "### `{title}`"'
        expected = help_flags('ngshare.admin', *command) - {'-h', '--help'}
        missing = expected - doc_flags(commands[title])
        assert not missing, f'{title}: flags missing in docs/cli.md: {missing}'


def test_every_documented_flag_exists(cli_md, all_help_flags):
    unknown = doc_flags(cli_md) - all_help_flags
    assert not unknown, f'docs/cli.md documents flags --help does not know: {unknown}'


def test_every_route_is_in_the_api_reference():
    api_md = (DOCS / 'api.md').read_text(encoding='utf-8')
    documented = set(re.findall(r'/api/([^\s`?)]+)', api_md))
    for pattern, _handler in API_ROUTES:
        # "submission/([^/]+)/([^/]+)" -> "submission/<x>/<y>", compared by
        # the fixed words and the number of segments.
        shape = re.sub(r'\\(.)', r'\1', re.sub(r'\([^)]*\)', '<>', pattern))
        wanted = re.compile('^' + re.escape(shape).replace('<>', '<[a-z_]+>') + '/?$')
        assert any(wanted.match(path) for path in documented), (
            f'docs/api.md does not document the route {shape!r}'
        )


@pytest.mark.skipif(
    importlib.util.find_spec('sphinx') is None
    or importlib.util.find_spec('myst_parser') is None,
    reason='Sphinx and myst-parser are not installed (pip install -e ".[docs]"; '
    '.ci/run installs them)',
)
def test_sphinx_build_has_no_warnings(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            '-m',
            'sphinx',
            '-W',
            '--keep-going',
            '-q',
            '-b',
            'html',
            '-d',
            str(tmp_path / 'doctrees'),
            str(DOCS),
            str(tmp_path / 'html'),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for page in ('index', 'cli', 'api', 'admin-notes', 'behaviour', 'architecture'):
        assert (tmp_path / 'html' / f'{page}.html').is_file(), page


# --------------------------------------------------------------------------
# What an administrator installs: every command leads to this ngshare and its
# plugin (issue 12). "pip install ngshare" resolves to the old 0.6.0 on the
# package index, which has no ngshare.exchange; the old plugin
# ngshare_exchange is mentioned once, in the marked paragraph of
# docs/exchange.md, and recommended nowhere.

OLD_PLUGIN_MARK = '<!-- old-plugin-mention -->'
# The documentation-like files an administrator reads or copies. tests/ and
# ngshare/exchange/ mention ngshare_exchange legitimately (compatibility).
DOC_GLOBS = (
    'README.md',
    'docs/*.md',
    'helmchart/ngshare/templates/NOTES.txt',
    'helmchart/ngshare/values.yaml',
    'ngshare/templates/*.html',
    'testing/**/*',
    'Dockerfile',
)
# (file, requirement) pairs that install an old release on purpose: the test
# script sets up the compatibility tests (the original suite on ngshare
# 0.6.0, the e2e course with ngshare_exchange 0.5.3).
DELIBERATE_OLD_INSTALLS = {
    ('testing/run-tests', 'ngshare==0.6.0'),
    ('testing/run-tests', 'ngshare-exchange==0.5.3'),
}
OUR_NEXT_VERSION = '1.0.0.dev0'
OLD_VERSION = '0.6.0'
# A command ends at the end of its line (unless continued with a backslash),
# at a shell separator, or where its inline code span ends.
PIP_INSTALL = re.compile(r'\bpip3?\s+install\b((?:[^\n`;|&\\]|\\\n|\\(?!\n))*)')
OLD_PLUGIN_USE = re.compile(
    r'from\s+ngshare_exchange\s+import|import\s+ngshare_exchange\b|ngshare_exchange\.\w'
)


def doc_files() -> list[str]:
    """Repository-relative names of the files scanned, sorted."""
    found = set()
    for pattern in DOC_GLOBS:
        for path in REPO_ROOT.glob(pattern):
            if path.is_file() and '__pycache__' not in path.parts:
                found.add(path.relative_to(REPO_ROOT).as_posix())
    return sorted(found)


def readable_text(name: str, text: str | None = None) -> str:
    """The commands of a file as a reader sees them, line numbers kept.

    HTML loses its tags (each ends a command, as a backtick does) and
    entities. Markdown keeps only its code (fenced blocks, inline spans),
    less counter-examples: an inline span right after "a plain", "a bare",
    "not" or "never" ("a plain `pip install ngshare` installs 0.6.0")."""
    if text is None:
        text = (REPO_ROOT / name).read_text(encoding='utf-8')
    if name.endswith('.html'):
        text = html.unescape(re.sub(r'<[^>]*>', '`', text))
    if name.endswith('.md'):
        text = MARKDOWN_CODE.sub(markdown_code, text)
    return text


MARKDOWN_CODE = re.compile(
    r'(?P<fence>^[ \t]*```[^\n]*\n.*?^[ \t]*```)|`(?P<span>[^`]+)`|(?P<prose>[^`]+)',
    re.MULTILINE | re.DOTALL,
)
COUNTER_EXAMPLE = re.compile(r'(?:\bplain|\bbare|\bnot|\bnever)\s*$', re.IGNORECASE)


def markdown_code(match: re.Match) -> str:
    """Code as it is, prose as blank lines, each span between backticks."""
    if match.group('fence') is not None:
        return match.group('fence')
    if match.group('span') is not None:
        before = match.string[max(0, match.start() - 12) : match.start()]
        if COUNTER_EXAMPLE.search(before.replace('\n', ' ')):
            return '`' + re.sub(r'[^\n]', ' ', match.group('span')) + '`'
        return '`' + match.group('span') + '`'
    return re.sub(r'[^\n]', ' ', match.group('prose'))


def without_marked_paragraph(text: str) -> str:
    """``text`` with the paragraph after the old-plugin mark (up to the next
    blank line) blanked out, line numbers kept."""
    start = text.find(OLD_PLUGIN_MARK)
    if start < 0:
        return text
    end = text.find('\n\n', start + len(OLD_PLUGIN_MARK) + 1)
    end = len(text) if end < 0 else end
    return text[:start] + re.sub(r'[^\n]', ' ', text[start:end]) + text[end:]


def install_requirements(text: str):
    """``(line, requirement)`` for every package named by a ``pip install``
    command in ``text``; options, paths (``.``, a checkout, ``.[test]``) and
    words that are no requirement are left out."""
    for match in PIP_INSTALL.finditer(text):
        line = text.count('\n', 0, match.start()) + 1
        command = re.split(r'\s#', match.group(1).replace('\\\n', ' '))[0]
        try:
            words = shlex.split(command)
        except ValueError:  # unbalanced quotes in prose
            words = command.split()
        for word in words:
            word = word.strip('\'"').rstrip('),.:')
            if not word or word.startswith('-') or '/' in word:
                continue
            try:
                yield line, Requirement(word)
            except InvalidRequirement:
                continue


def install_problems(name: str, text: str) -> list[str]:
    problems = []
    for line, req in install_requirements(text):
        where = f'{name}:{line}: pip install {req}'
        if (name, str(req)) in DELIBERATE_OLD_INSTALLS:
            continue
        project = canonicalize_name(req.name)
        if project == 'ngshare':
            spec = req.specifier
            if spec.contains(OLD_VERSION, prereleases=True):
                problems.append(f'{where}: admits ngshare {OLD_VERSION}')
            elif not spec.contains(OUR_NEXT_VERSION, prereleases=True):
                problems.append(f'{where}: excludes this ngshare {OUR_NEXT_VERSION}')
        elif project == 'ngshare-exchange':
            problems.append(f'{where}: installs the old plugin')
    return problems


def test_install_parser_sees_commands():
    """The scanner above is not vacuous, and judges versions as intended."""
    text = (
        'pip install ngshare\n'
        '`python3 -m pip install --upgrade "ngshare[exchange]>=1.0.0.dev0"`\n'
        'RUN pip install --no-deps ngshare_exchange==0.5.3  # old\n'
        'pip install . "/src/ngshare[postgres]" -e ".[test]"\n'
        'RUN python -m pip install -q \\\n    ngshare \\\n    && true\n'
        'pip install "ngshare>=1.0"\n'
    )
    assert [str(req) for _, req in install_requirements(text)] == [
        'ngshare',
        'ngshare[exchange]>=1.0.0.dev0',
        'ngshare_exchange==0.5.3',
        'ngshare',
        'ngshare>=1.0',
    ]
    problems = install_problems('x.md', text)
    lines = [p.split(': ', 2)[0] for p in problems]
    assert lines == ['x.md:1', 'x.md:3', 'x.md:5', 'x.md:8']
    assert 'admits ngshare 0.6.0' in problems[0]
    assert 'installs the old plugin' in problems[1]
    assert 'admits ngshare 0.6.0' in problems[2]
    assert 'excludes this ngshare' in problems[3]
    prose = (
        'To pip install ngshare, see below; a plain `pip install ngshare`\n'
        'installs 0.6.0, not\n`pip install ngshare`. Run:\n'
        '```sh\npip install ngshare\n```\n`pip install ngshare` too.\n'
    )
    problems = install_problems('x.md', readable_text('x.md', prose))
    assert [p.split(': ', 2)[0] for p in problems] == ['x.md:5', 'x.md:7']
    page = '<code>pip install &quot;ngshare[exchange]&gt;=1.0.0.dev0&quot;</code>'
    assert install_problems('x.html', readable_text('x.html', page)) == []
    page = '<code>pip install &quot;ngshare[exchange]&quot;</code>'
    assert len(install_problems('x.html', readable_text('x.html', page))) == 1
    assert OLD_PLUGIN_USE.search('c.Exchange.x = "ngshare_exchange.ExchangeFetch"')


def test_scanned_files_include_every_kind():
    names = doc_files()
    for expected in (
        'README.md',
        'docs/jupyterhub.md',
        'helmchart/ngshare/templates/NOTES.txt',
        'helmchart/ngshare/values.yaml',
        'ngshare/templates/home.html',
        'testing/install_jhmanaged/nbgrader_config.py',
        'Dockerfile',
    ):
        assert expected in names, names


def test_every_install_command_names_this_ngshare():
    """``pip install ngshare`` installs 0.6.0 from the package index today;
    every command must name a version only this project satisfies
    (``"ngshare>=1.0.0.dev0"``), so that it fails loudly instead."""
    problems = []
    for name in doc_files():
        raw = (REPO_ROOT / name).read_text(encoding='utf-8')
        problems += install_problems(
            name, readable_text(name, without_marked_paragraph(raw))
        )
    assert not problems, '\n'.join(problems)


def test_old_plugin_is_configured_nowhere():
    """``ngshare.exchange`` is the plugin the documentation recommends; the old
    ``ngshare_exchange`` appears once, in the marked paragraph of
    docs/exchange.md."""
    problems = []
    marks = []
    for name in doc_files():
        raw = (REPO_ROOT / name).read_text(encoding='utf-8')
        marks += [name] * raw.count(OLD_PLUGIN_MARK)
        rest = readable_text(name, without_marked_paragraph(raw))
        for match in OLD_PLUGIN_USE.finditer(rest):
            line = rest.count('\n', 0, match.start()) + 1
            problems.append(f'{name}:{line}: {match.group(0)}')
    assert not problems, 'the old plugin configured in:\n' + '\n'.join(problems)
    assert marks == ['docs/exchange.md'], f'old-plugin marks: {marks}'


def test_the_marked_mention_gives_the_no_deps_caveat():
    text = (DOCS / 'exchange.md').read_text(encoding='utf-8')
    start = text.index(OLD_PLUGIN_MARK)
    paragraph = text[start : text.index('\n\n', start + len(OLD_PLUGIN_MARK) + 1)]
    assert 'also works' in paragraph
    assert 'pip install --no-deps ngshare-exchange==0.5.3' in paragraph


# --------------------------------------------------------------------------
# The JupyterHub configuration an administrator copies (README.md,
# docs/jupyterhub.md, the example of testing/install_jhmanaged) works when the
# Hub runs from a virtual environment, and lets users open ngshare's pages.
# tests/test_readme_hub.py runs the README's block in a real JupyterHub.

EXAMPLE_DIR = REPO_ROOT / 'testing' / 'install_jhmanaged'
PYTHON_BLOCK = re.compile(r'```python\n(.*?)```', re.DOTALL)


def hub_block(name: str) -> str:
    """The one Python block of a Markdown file that adds JupyterHub services."""
    text = (REPO_ROOT / name).read_text(encoding='utf-8')
    blocks = [b for b in PYTHON_BLOCK.findall(text) if 'c.JupyterHub.services' in b]
    assert len(blocks) == 1, f'{name} has {len(blocks)} JupyterHub blocks'
    return blocks[0]


def load_hub_config(tmp_path, name: str):
    from traitlets.config.loader import PyFileConfigLoader

    if name.endswith('.md'):
        path = tmp_path / 'jupyterhub_config.py'
        path.write_text(hub_block(name), encoding='utf-8')
    else:
        path = REPO_ROOT / name
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


@pytest.mark.parametrize(
    'name',
    [
        'README.md',
        'docs/jupyterhub.md',
        'testing/install_jhmanaged/jupyterhub_config.py',
    ],
)
def test_hub_configuration_runs_in_the_hubs_environment(tmp_path, name):
    config = load_hub_config(tmp_path, name)
    (service,) = [
        entry
        for entry in config.JupyterHub.services.get_value([])
        if entry['name'] == 'ngshare'
    ]
    # sys.executable (evaluated by the Hub: here, this interpreter), not a
    # bare 'python3' looked up on the Hub's PATH
    assert service['command'][:3] == [sys.executable, '-m', 'ngshare'], service
    assert service['oauth_no_confirm'] is True
    (role,) = [
        entry
        for entry in config.JupyterHub.load_roles.get_value([])
        if entry['name'] == 'user'
    ]
    assert {'self', 'access:services!service=ngshare'} <= set(role['scopes'])


def test_example_nbgrader_config_uses_our_plugin_and_the_service_url():
    """The two example files agree, with the real ``ngshare.exchange``."""
    pytest.importorskip('nbgrader', reason='pip install -e ".[test]"')
    from traitlets.config.loader import PyFileConfigLoader

    from ngshare.exchange import Exchange

    hub = PyFileConfigLoader(
        'jupyterhub_config.py', path=str(EXAMPLE_DIR)
    ).load_config()
    (service,) = [
        entry
        for entry in hub.JupyterHub.services.get_value([])
        if entry['name'] == 'ngshare'
    ]
    config = PyFileConfigLoader(
        'nbgrader_config.py', path=str(EXAMPLE_DIR)
    ).load_config()
    assert config.Exchange.ngshare_url == service['url'] + '/services/ngshare'
    assert config.ExchangeFactory.exchange is Exchange
    assert config.CourseDirectory.course_id == '*'
