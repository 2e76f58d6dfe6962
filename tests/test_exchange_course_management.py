"""``ngshare-course-management`` (ngshare.exchange) against a real ngshare.

Run the way an instructor runs it: in their course directory, finding
ngshare through the global ``nbgrader_config.py``, with their
``JUPYTERHUB_API_TOKEN``; in this process (``main(argv)`` with that
environment and folder), and as a real command where the command itself
matters. Checks ngshare's roster and the local
nbgrader gradebook after each command, and the exit status and message of
every failure.
"""

from __future__ import annotations

import importlib.util
import json

import pytest
from _exchange import *  # noqa: F403 (the exchange_site fixtures)
from _exchange import COURSE, Site, run_cli, run_course_management
from _servers import free_port

pytestmark = [
    pytest.mark.timeout(300),
    # nbgrader's Gradebook, when the test adds a submission to it
    pytest.mark.filterwarnings('ignore::sqlalchemy.exc.SAWarning'),
]


def manage(person, *argv: str, **kwargs):
    return run_course_management(person, *argv, **kwargs)


def command(person, *argv: str, **kwargs):
    return run_cli(person, 'ngshare-course-management', *argv, **kwargs)


def ok(done) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'Traceback' not in done.stderr, done.stderr
    return done.stdout


def failed(done, *needles: str, status: int = 1) -> str:
    output = done.stdout + done.stderr
    assert done.returncode == status, output
    assert 'Traceback' not in output, output
    for needle in needles:
        assert needle in done.stderr, f'{needle!r} not in:\n{output}'
    return done.stderr


def roster(site: Site) -> dict:
    body = site.api('GET', 'students', COURSE, as_user='kevin')
    return {
        s['username']: (s['first_name'], s['last_name'], s['email'])
        for s in body['students']
    }


def instructors(site: Site, course: str) -> dict:
    body = site.api('GET', 'instructors', course)
    return {
        i['username']: (i['first_name'], i['last_name'], i['email'])
        for i in body['instructors']
    }


def gradebook(course_dir) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f'sqlite:///{course_dir / "gradebook.db"}', COURSE) as gb:
        return {
            s.id: (s.first_name or '', s.last_name or '', s.email or '')
            for s in gb.students
        }


def test_admin_commands(exchange_site):
    site = exchange_site
    root, kevin = site['root'], site['kevin']

    out = ok(command(root, 'create_course', 'ECS193', 'kevin', 'Abigail'))
    assert 'Successfully created ECS193' in out
    assert set(instructors(site, 'ECS193')) == {'kevin', 'Abigail'}

    # without -f/-l/-e: the stored names stay (empty for a new instructor)
    out = ok(manage(root, 'add_instructor', 'ECS193', 'grace'))
    assert 'Successfully added grace as an instructor to ECS193' in out
    ok(manage(root, 'add_instructor', 'ECS193', 'kevin', '-f', 'Kevin', '-l', 'Ko'))
    ok(manage(root, 'add_instructor', 'ECS193', 'kevin', '-e', 'k@example.org'))
    found = instructors(site, 'ECS193')
    assert found['grace'] == ('', '', '')
    assert found['kevin'] == ('Kevin', 'Ko', 'k@example.org')

    out = ok(manage(root, 'remove_instructor', 'ECS193', 'grace'))
    assert 'Successfully deleted instructor grace from ECS193' in out
    assert 'grace' not in instructors(site, 'ECS193')

    # refusals: the server's message, exit status 1
    failed(
        command(root, 'create_course', 'ECS193'),
        'create course (ECS193) failed: Course already exists',
    )
    failed(
        manage(kevin, 'create_course', 'MINE'),
        'create course (MINE) failed: Permission denied',
    )
    failed(
        manage(root, 'remove_instructor', 'ECS193', 'nobody'),
        'Instructor not found',
    )
    failed(
        manage(
            root, 'add_instructor', 'NOPE', 'kevin', '-f', 'a', '-l', 'b', '-e', 'c'
        ),
        'add instructor (NOPE) failed: Course not found',
    )


def test_students_with_the_gradebook(exchange_site):
    site = exchange_site
    kevin, lawrence = site['kevin'], site['lawrence']
    cwd = kevin.course_dir
    (cwd / 'nbgrader_config.py').write_text(
        f'c = get_config()\nc.CourseDirectory.course_id = {COURSE!r}\n'
    )

    out = ok(
        command(
            kevin,
            'add_student',
            COURSE,
            'grace',
            '-f',
            'Grace',
            '-l',
            'Hopper',
            '-e',
            'g@example.org',
            cwd=cwd,
        )
    )
    assert f'Successfully added/updated grace on {COURSE}' in out
    assert roster(site)['grace'] == ('Grace', 'Hopper', 'g@example.org')
    assert gradebook(cwd)['grace'] == ('Grace', 'Hopper', 'g@example.org')
    # an update of the email alone keeps the names
    ok(manage(kevin, 'add_student', COURSE, 'grace', '-e', 'gh@example.org', cwd=cwd))
    assert roster(site)['grace'] == ('Grace', 'Hopper', 'gh@example.org')
    # --no-gb: ngshare only
    ok(manage(kevin, 'add_student', COURSE, 'zed', '--no-gb', cwd=cwd))
    assert 'zed' in roster(site) and 'zed' not in gradebook(cwd)

    # add_students from CSV (blank cells allowed)
    csv_path = kevin.home / 'students.csv'
    csv_path.write_text(
        'student_id,first_name,last_name,email\n'
        'mallory,,,\n'
        'eric,Eric,Evans,e@example.org\n'
    )
    out = ok(manage(kevin, 'add_students', COURSE, str(csv_path), cwd=cwd))
    assert f'mallory was successfully added to {COURSE}' in out
    assert f'eric was successfully added to {COURSE}' in out
    assert roster(site)['mallory'] == ('', '', '')
    assert gradebook(cwd)['eric'] == ('Eric', 'Evans', 'e@example.org')
    assert gradebook(cwd)['mallory'] == ('', '', '')

    # an instructor in the CSV: that row fails, the others are added
    csv_path.write_text(
        'student_id,first_name,last_name,email\nkevin,K,K,k\nivy,Ivy,I,i\n'
    )
    err = failed(
        manage(kevin, 'add_students', COURSE, str(csv_path), cwd=cwd),
        f'There was an error adding kevin to {COURSE}: Cannot add instructor as'
        ' student',
    )
    assert 'ivy' in roster(site) and 'ivy' in gradebook(cwd), err

    # bad CSV files: nobody is added
    for text, needle in (
        ('student_id,first_name,email\nx,y,z\n', 'missing last_name'),
        ('student_id,first_name,last_name,email\n,a,b,c\nq,,,\n', 'empty student_id'),
        ('student_id,first_name,last_name,email\nq,a\n', 'line 2: 2 fields'),
        ('', 'is empty'),
    ):
        csv_path.write_text(text)
        failed(manage(kevin, 'add_students', COURSE, str(csv_path), cwd=cwd), needle)
        assert 'q' not in roster(site)
    failed(
        manage(kevin, 'add_students', COURSE, str(kevin.home / 'none.csv'), cwd=cwd),
        'cannot read',
    )

    # remove_students: ngshare and the gradebook; grades need --force
    from nbgrader.api import Gradebook

    with Gradebook(f'sqlite:///{cwd / "gradebook.db"}', COURSE) as gb:
        gb.add_assignment('ps1')
        gb.add_submission('ps1', 'eric')
    out = ok(manage(kevin, 'remove_students', COURSE, 'mallory', 'zed', cwd=cwd))
    assert f'Successfully deleted mallory from {COURSE}' in out
    assert 'mallory' not in roster(site) and 'mallory' not in gradebook(cwd)
    failed(
        manage(kevin, 'remove_students', COURSE, 'eric', cwd=cwd),
        'eric has grades in the local gradebook and was not removed (rerun with'
        ' --force',
    )
    assert 'eric' in roster(site) and 'eric' in gradebook(cwd)
    ok(manage(kevin, 'remove_students', COURSE, 'eric', '--force', cwd=cwd))
    assert 'eric' not in gradebook(cwd)
    ok(manage(kevin, 'remove_students', COURSE, 'ivy', '--no-gb', cwd=cwd))
    assert 'ivy' in gradebook(cwd)
    failed(
        manage(kevin, 'remove_students', COURSE, 'nobody', 'grace', cwd=cwd),
        f'cannot remove nobody from {COURSE}: Student not found',
    )
    assert 'grace' not in roster(site)  # the others are still removed

    # a student may not manage the roster
    failed(
        manage(lawrence, 'add_student', COURSE, 'oscar', '--no-gb'),
        f'add student ({COURSE}) failed: Permission denied',
    )
    # under a stand-alone ngshare `user` names the caller: the same refusal
    # when lawrence claims to be kevin is a matter for Hub mode (ngshare
    # ignores `user` there), see test_spoofed_user_under_the_hub.


def test_spoofed_user_under_the_hub(exchange_site_hub):
    site = exchange_site_hub
    lawrence = site['lawrence']
    failed(
        manage(
            lawrence,
            'add_student',
            COURSE,
            'oscar',
            '--no-gb',
            env={'JUPYTERHUB_USER': 'kevin', 'USER': 'kevin'},
        ),
        'Permission denied',
    )
    assert 'oscar' not in roster(site)


def test_finding_ngshare(exchange_site, hub, tmp_path):
    site = exchange_site
    root = site['root']
    # --url wins over nbgrader_config.py
    url = f'http://127.0.0.1:{free_port()}/services/ngshare'
    failed(
        manage(root, 'create_course', 'X1', url=url),
        f'create course (X1) failed: cannot reach ngshare at {url}',
    )
    ok(manage(root, '--url', site.url, 'create_course', 'X1', url=url))
    # no URL anywhere
    failed(
        manage(root, 'create_course', 'X2', url=''),
        'the ngshare URL is not configured',
        '(or pass --url)',
    )
    # not ngshare
    failed(manage(root, 'create_course', 'X3', url=hub.url), 'is not an ngshare API')
    # the old plugin's configuration (configureExchange of ngshare_exchange)
    if importlib.util.find_spec('ngshare_exchange') is None:
        pytest.skip('ngshare_exchange is not installed')
    old = (
        'from ngshare_exchange import configureExchange\n'
        'c = get_config()\n'
        f'configureExchange(c, {site.url!r})\n'
    )
    ok(manage(root, 'create_course', 'X4', nbgrader_config=old))
    assert 'X4' in site.api('GET', 'courses')['courses']


def test_usage(exchange_site):
    root = exchange_site['root']
    done = manage(root)
    assert done.returncode == 2 and 'create_course' in done.stdout
    done = command(root, 'add_students', COURSE)
    assert done.returncode == 2 and 'CSV_FILE' in done.stderr
    done = manage(root, '--version')
    assert done.returncode == 0 and done.stdout.startswith('ngshare ')
    for sub in (
        'create_course',
        'add_instructor',
        'remove_instructor',
        'add_student',
        'add_students',
        'remove_students',
    ):
        done = manage(root, sub, '-h')
        assert done.returncode == 0, sub
    done = manage(root, 'remove_students', '-h')
    assert '--no-gb' in done.stdout and '--force' in done.stdout
    done = manage(root, 'add_student', '-h')
    for flag in ('-f', '-l', '-e', '--no-gb'):
        assert flag in done.stdout


def test_course_ids_are_quoted(exchange_site):
    site = exchange_site
    root = site['root']
    ok(manage(root, 'create_course', 'NBG 101/α', 'kevin'))
    assert 'NBG 101/α' in site.api('GET', 'courses')['courses']
    csv_path = root.home / 's.csv'
    csv_path.write_text('student_id,first_name,last_name,email\nzoë,Zoë,Z,\n')
    ok(manage(site['kevin'], 'add_students', 'NBG 101/α', str(csv_path), '--no-gb'))
    body = site.api('GET', 'students', 'NBG 101/α', as_user='kevin')
    assert [s['username'] for s in body['students']] == ['zoë']
    assert json.dumps(body)  # JSON all the way
