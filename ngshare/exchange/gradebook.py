"""The local nbgrader side of ``ngshare-course-management``: nbgrader's
configuration and the course's gradebook.

Students added to or removed from a course on ngshare are also added to or
removed from the gradebook of the course directory the command runs in (as
``ngshare_exchange``'s command did), unless ``--no-gb``. Every function
answers failures as text, so that one gradebook problem is reported beside
the server's answers instead of stopping the command.
"""

from __future__ import annotations

__all__ = [
    'gradebook_add',
    'gradebook_check',
    'gradebook_remove',
    'load_nbgrader_config',
    'open_gradebook',
]


def load_nbgrader_config():
    """nbgrader's configuration, as ``nbgrader`` run here would load it."""
    from nbgrader.apps import NbGrader

    app = NbGrader()
    app.log.setLevel('ERROR')  # no "No nbgrader_config.py file found" noise
    app.load_config_file()
    return app.config


def open_gradebook(course_id: str):
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=load_nbgrader_config())
    return Gradebook(coursedir.db_url, course_id)


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
