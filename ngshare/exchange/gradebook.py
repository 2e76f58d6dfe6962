"""The local nbgrader side of ``ngshare-course-management``: nbgrader's
configuration and the course's gradebook.

Students added to or removed from a course on ngshare are also added to or
removed from the gradebook of the course directory the command runs in (as
``ngshare_exchange``'s command did), unless ``--no-gb``. Every function
answers failures as text, so that one gradebook problem is reported beside
the server's answers instead of stopping the command.

Due dates: nbgrader keeps an assignment's ``duedate`` (naive UTC) in the
gradebook, and computes a submission's lateness from it plus the
submission's ``extension``. ``release_assignment`` reads it
(:func:`read_duedate`), ``set_due_date`` keeps it equal to ngshare's, and
``collect`` makes the gradebook agree with the due date ngshare applied to
each submission (:func:`agree_with_server`), so that ``nbgrader autograde``
finds the lateness ngshare found.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Mapping

__all__ = [
    'agree_with_server',
    'gradebook_add',
    'gradebook_check',
    'gradebook_exists',
    'gradebook_remove',
    'gradebook_set_duedate',
    'load_nbgrader_config',
    'open_gradebook',
    'read_duedate',
]


def load_nbgrader_config():
    """nbgrader's configuration, as ``nbgrader`` run here would load it."""
    from nbgrader.apps import NbGrader

    app = NbGrader()
    app.log.setLevel('ERROR')  # no "No nbgrader_config.py file found" noise
    app.load_config_file()
    return app.config


def local_db_url() -> str:
    """The gradebook URL of the course directory this command runs in."""
    from nbgrader.coursedir import CourseDirectory

    return CourseDirectory(config=load_nbgrader_config()).db_url


def open_gradebook(course_id: str):
    from nbgrader.api import Gradebook

    return Gradebook(local_db_url(), course_id)


def gradebook_exists(db_url: str) -> bool:
    """False for a SQLite gradebook whose file is not there: opening it
    would create an empty one, which reading a due date must not do."""
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.get_backend_name() != 'sqlite':
        return True
    return bool(url.database) and os.path.isfile(url.database)


def read_duedate(
    db_url: str, course_id: str, assignment_id: str
) -> datetime.datetime | None:
    """The assignment's due date in the gradebook (naive UTC), None when the
    gradebook, the assignment or its due date is missing. Other gradebook
    failures raise."""
    from nbgrader.api import Gradebook, MissingEntry

    if not gradebook_exists(db_url):
        return None
    with Gradebook(db_url, course_id) as gb:
        try:
            return gb.find_assignment(assignment_id).duedate
        except MissingEntry:
            return None


def gradebook_set_duedate(
    course_id: str, assignment_id: str, due: datetime.datetime | None
) -> str | None:
    """Set (or clear) the due date of an assignment the local gradebook has;
    a failure, or None (also when there is no such gradebook or assignment:
    ``generate_assignment`` adds it later, with nbgrader's own due date)."""
    from nbgrader.api import Gradebook, MissingEntry

    try:
        db_url = local_db_url()
        if not gradebook_exists(db_url):
            return None
        with Gradebook(db_url, course_id) as gb:
            try:
                assignment = gb.find_assignment(assignment_id)
            except MissingEntry:
                return None
            assignment.duedate = due
            gb.db.commit()
    except Exception as exc:  # noqa: BLE001
        return f'cannot set the due date in the local gradebook: {exc}'
    return None


def agree_with_server(
    db_url: str,
    course_id: str,
    assignment_id: str,
    dues: Mapping[str, datetime.datetime],
    assignment_due: Callable[[], datetime.datetime | None],
) -> list[str]:
    """Make the gradebook compute the lateness ngshare computed.

    ``dues`` maps each collected student to the due date ngshare applied to
    their submission (extension included). nbgrader's lateness is the
    timestamp minus the assignment's ``duedate`` plus the submission's
    ``extension``: an assignment without a due date gets ngshare's
    (``assignment_due()``, asked only then), and each submission the
    difference as its extension (none when there is no difference). Returns
    what was changed, as lines to log.
    """
    from nbgrader.api import Gradebook, MissingEntry

    done: list[str] = []
    with Gradebook(db_url, course_id) as gb:
        try:
            assignment = gb.find_assignment(assignment_id)
        except MissingEntry:
            return [
                f'the gradebook has no assignment {assignment_id!r} (run nbgrader'
                ' generate_assignment): lateness not recorded'
            ]
        if assignment.duedate is None:
            due = assignment_due()
            if due is None:
                return ['ngshare has no due date for the assignment any more']
            assignment.duedate = due
            gb.db.commit()
            done.append(f"due date set to {due.isoformat()} UTC (ngshare's)")
        for student_id in sorted(dues):
            extension = dues[student_id] - assignment.duedate
            gb.update_or_create_student(student_id)
            try:
                submission = gb.find_submission(assignment_id, student_id)
            except MissingEntry:
                submission = gb.add_submission(assignment_id, student_id)
            wanted = extension if extension else None
            if submission.extension != wanted:
                submission.extension = wanted
                gb.db.commit()
                done.append(
                    f'extension of {student_id} set to {wanted}'
                    if wanted
                    else f'extension of {student_id} removed'
                )
    return done


def gradebook_add(course_id: str, students: list[dict]) -> list[str]:
    """Add or update ``students`` in the local gradebook; return failures."""
    failures = []
    try:
        with open_gradebook(course_id) as gb:
            for student in students:
                try:
                    gb.update_or_create_student(
                        student['username'],
                        first_name=student['first_name'] or None,
                        last_name=student['last_name'] or None,
                        email=student['email'] or None,
                    )
                except Exception as exc:  # noqa: BLE001
                    failures.append(
                        f'cannot add {student["username"]} to the local'
                        f' gradebook: {exc}'
                    )
    except Exception as exc:  # noqa: BLE001
        failures.append(f'cannot open the local nbgrader gradebook: {exc}')
    return failures


def gradebook_check(course_id: str, student_id: str, force: bool) -> str | None:
    """Why ``student_id`` cannot leave the local gradebook, or None."""
    from nbgrader.api import MissingEntry

    try:
        with open_gradebook(course_id) as gb:
            try:
                student = gb.find_student(student_id)
            except MissingEntry:
                return None
            if student.submissions and not force:
                return (
                    f'{student_id} has grades in the local gradebook and was not'
                    ' removed (rerun with --force to delete the grades too, or'
                    ' with --no-gb to remove them from ngshare only)'
                )
    except Exception as exc:  # noqa: BLE001
        return f'cannot open the local nbgrader gradebook: {exc}'
    return None


def gradebook_remove(course_id: str, student_id: str) -> str | None:
    """Remove one student from the local gradebook; a failure, or None."""
    from nbgrader.api import MissingEntry

    try:
        with open_gradebook(course_id) as gb:
            try:
                gb.find_student(student_id)
            except MissingEntry:
                return None  # not in the gradebook: nothing to do
            gb.remove_student(student_id)
    except Exception as exc:  # noqa: BLE001
        return f'cannot remove {student_id} from the local gradebook: {exc}'
    return None
