"""nbgrader list: released, submitted (``--inbound``) and cached assignments.

Returns the structure of nbgrader's own exchange, which nbgrader's
JupyterLab extensions (assignment list, course list) and formgrader read:

* released (default): ``[{course_id, assignment_id, status, path,
  notebooks: [{notebook_id, path}]}]`` with status ``released``,
  ``fetched`` (a local copy exists; paths are local) or ``removed``;
* ``--inbound`` / ``--cached``: ``[{course_id, student_id, assignment_id,
  status: 'submitted', submissions: [{..., timestamp, notebooks,
  has_local_feedback, has_exchange_feedback, feedback_updated,
  local_feedback_path}]}]``.

Feedback counts as updated when its checksum on ngshare differs from the
fetched copy in ``<assignment>/feedback/<timestamp>/``. Due dates and
lateness are added by :mod:`.list_deadlines`, collect and feedback times of
``--cached`` by :mod:`.list_history` (keys added, none changed).
"""

from __future__ import annotations

import glob
import os
import re
import shutil

from nbgrader.exchange.abc import ExchangeList as ABCExchangeList

from .client import NgshareError
from .deadlines import judged_submissions
from .exchange import Exchange, checksum_of
from .list_deadlines import DeadlineListing, lateness_fields
from .list_history import HistoryListing


def _notebook_id(path: str, extension: str) -> str | None:
    """``ps1`` for a top-level ``ps1.ipynb`` (with ``extension``), else None."""
    if '/' in path or not path.endswith(extension):
        return None
    return path[: -len(extension)]


class ExchangeList(HistoryListing, DeadlineListing, Exchange, ABCExchangeList):
    def init_src(self):
        pass

    def copy_files(self):
        pass

    def init_dest(self):
        coursedir = self.coursedir
        self.course_filter = coursedir.course_id or '*'
        self.assignment_filter = coursedir.assignment_id or '*'
        self.student_filter = coursedir.student_id or '*'
        if self.cached:
            pattern = os.path.join(
                self.cache,
                self.course_filter,
                f'{self.student_filter}+{self.assignment_filter}+*',
            )
            self.assignments = sorted(glob.glob(pattern))
        else:
            self.assignments = self.remote_assignments()

    # -- what ngshare has ---------------------------------------------------

    def remote_assignments(self) -> list[tuple[str, str]]:
        """``[(course_id, assignment_id)]`` matching the filters, from ngshare."""
        if self.course_filter == '*':
            body = self.call('list your courses', lambda: self.client.get('courses'))
            courses = body.get('courses', [])
        else:
            courses = [self.course_filter]
        found = []
        for course_id in courses:
            body = self.call(
                self.what('list the assignments', course_id),
                lambda course_id=course_id: self.client.get('assignments', course_id),
            )
            self.remember_deadlines(course_id, body)
            for assignment_id in body.get('assignments', []):
                if self.assignment_filter in ('*', assignment_id):
                    found.append((course_id, assignment_id))
        return found

    def feedback_checksums(
        self, course_id: str, assignment_id: str, student_id: str, timestamp: str
    ) -> dict[str, str]:
        """``{notebook_id: md5}`` of the feedback on one submission."""
        try:
            body = self.client.get(
                'feedback',
                course_id,
                assignment_id,
                student_id,
                timestamp=timestamp,
                list_only='true',
            )
        except NgshareError as exc:
            if exc.message in ('Submission not found', 'Student not found'):
                # e.g. a cached copy of a submission to another server
                self.log.warning(
                    'ngshare does not know the submission %s %s %s %s: %s',
                    course_id,
                    student_id,
                    assignment_id,
                    timestamp,
                    exc,
                )
                return {}
            self.fail(
                'Cannot '
                + self.what(
                    f'check feedback on the submission of {student_id!r}'
                    f' ({timestamp}) to assignment',
                    course_id,
                    assignment_id,
                )
                + f': {exc}'
            )
        checksums = {}
        for entry in body.get('files', []):
            notebook_id = _notebook_id(entry.get('path', ''), '.html')
            if notebook_id is not None:
                checksums[notebook_id] = entry.get('checksum')
        return checksums

    def remote_notebooks(self, what: str, *segments: str, **params) -> list[str]:
        body = self.call(
            what, lambda: self.client.get(*segments, list_only='true', **params)
        )
        names = (
            _notebook_id(entry.get('path', ''), '.ipynb')
            for entry in body.get('files', [])
        )
        return sorted(name for name in names if name is not None)

    # -- building nbgrader's records ---------------------------------------

    def released_info(self, course_id: str, assignment_id: str) -> dict:
        info = {'course_id': course_id, 'assignment_id': assignment_id}
        local = self.local_assignment_dir(course_id, assignment_id)
        if os.path.exists(local):
            info['status'] = 'fetched'
            info['path'] = os.path.abspath(local)
            notebooks = [
                {
                    'notebook_id': os.path.splitext(os.path.basename(path))[0],
                    'path': os.path.abspath(path),
                }
                for path in sorted(glob.glob(os.path.join(local, '*.ipynb')))
            ]
        else:
            info['status'] = 'released'
            info['path'] = f'{self.client.url}/assignment/{course_id}/{assignment_id}'
            names = self.remote_notebooks(
                self.what('list the files of assignment', course_id, assignment_id),
                'assignment',
                course_id,
                assignment_id,
            )
            notebooks = [
                {'notebook_id': name, 'path': f'{name}.ipynb'} for name in names
            ]
        if self.remove:
            info['status'] = 'removed'
        if not notebooks:
            self.log.warning(
                "No notebooks found for assignment '%s' in course '%s'",
                assignment_id,
                course_id,
            )
        info['notebooks'] = notebooks
        info.update(self.deadline_fields(course_id, assignment_id))
        return info

    def submitted_info(
        self,
        course_id: str,
        student_id: str,
        assignment_id: str,
        timestamp: str,
        path: str,
        notebook_ids: list[str],
        lateness: dict,
    ) -> dict:
        info = {
            'course_id': course_id,
            'student_id': student_id,
            'assignment_id': assignment_id,
            'timestamp': timestamp,
            'status': 'removed' if self.remove else 'submitted',
            'path': path,
            **lateness,
        }
        assignment_dir = self.local_assignment_dir(course_id, assignment_id)
        local_feedback_dir = os.path.join(assignment_dir, 'feedback', timestamp)
        remote = self.feedback_checksums(
            course_id, assignment_id, student_id, timestamp
        )
        notebooks = []
        for notebook_id in notebook_ids:
            local_path = os.path.join(local_feedback_dir, f'{notebook_id}.html')
            has_local = os.path.isfile(local_path)
            has_exchange = notebook_id in remote
            nb_info = {
                'notebook_id': notebook_id,
                'has_local_feedback': has_local,
                'has_exchange_feedback': has_exchange,
                'local_feedback_path': local_path if has_local else None,
                'feedback_updated': bool(
                    has_local
                    and has_exchange
                    and remote[notebook_id] != checksum_of(local_path)
                ),
            }
            if self.cached:
                nb_info['path'] = os.path.abspath(
                    os.path.join(path, f'{notebook_id}.ipynb')
                )
            notebooks.append(nb_info)
        if not notebooks:
            self.log.warning(
                "No notebooks found for assignment '%s' in course '%s'",
                assignment_id,
                course_id,
            )
        info['notebooks'] = notebooks
        info['has_local_feedback'] = bool(notebooks) and all(
            nb['has_local_feedback'] for nb in notebooks
        )
        info['has_exchange_feedback'] = bool(notebooks) and all(
            nb['has_exchange_feedback'] for nb in notebooks
        )
        info['feedback_updated'] = any(nb['feedback_updated'] for nb in notebooks)
        if info['has_local_feedback']:
            info['local_feedback_path'] = os.path.abspath(local_feedback_dir)
        else:
            info['local_feedback_path'] = None
        return info

    def inbound_submissions(self) -> list[dict]:
        submissions = []
        for course_id, assignment_id in self.assignments:
            segments = ['submissions', course_id, assignment_id]
            if self.student_filter != '*':
                segments.append(self.student_filter)
            body = self.call(
                self.what(
                    'list the submissions to assignment', course_id, assignment_id
                ),
                lambda segments=segments: self.client.get(*segments),
            )
            for entry in judged_submissions(body):
                student_id, timestamp = entry['student_id'], entry['timestamp']
                notebooks = self.remote_notebooks(
                    self.what(
                        f'list the submission of {student_id!r} to assignment',
                        course_id,
                        assignment_id,
                    ),
                    'submission',
                    course_id,
                    assignment_id,
                    student_id,
                    timestamp=timestamp,
                )
                submissions.append(
                    self.submitted_info(
                        course_id,
                        student_id,
                        assignment_id,
                        timestamp,
                        f'{self.client.url}/submission/{course_id}/{assignment_id}'
                        f'/{student_id}',
                        notebooks,
                        lateness_fields(entry),
                    )
                )
        return submissions

    def cached_submissions(self) -> list[dict]:
        regexp = re.compile(
            r'.*/(?P<course_id>[^/]*)/(?P<student_id>[^/]*)\+(?P<assignment_id>[^/+]*)'
            r'\+(?P<timestamp>[^/]*)$'
        )
        submissions = []
        for path in self.assignments:
            match = regexp.match(path.replace(os.sep, '/'))
            if match is None:
                self.log.warning('Not a cached submission: %s', path)
                continue
            notebooks = [
                os.path.splitext(os.path.basename(nb))[0]
                for nb in sorted(glob.glob(os.path.join(path, '*.ipynb')))
            ]
            submissions.append(
                self.submitted_info(
                    match['course_id'],
                    match['student_id'],
                    match['assignment_id'],
                    match['timestamp'],
                    path,
                    notebooks,
                    self.cached_lateness(
                        match['course_id'],
                        match['assignment_id'],
                        match['student_id'],
                        match['timestamp'],
                    ),
                )
            )
        return self.with_history(submissions)

    def parse_assignments(self) -> list[dict]:
        if not (self.inbound or self.cached):
            return [self.released_info(c, a) for c, a in self.assignments]
        found = (
            self.inbound_submissions() if self.inbound else self.cached_submissions()
        )
        groups: dict[tuple[str, str, str], list[dict]] = {}
        for info in found:
            key = (info['course_id'], info['student_id'], info['assignment_id'])
            groups.setdefault(key, []).append(info)
        result = []
        for key in sorted(groups):
            submissions = sorted(groups[key], key=lambda x: x['timestamp'])
            result.append(
                {
                    'course_id': key[0],
                    'student_id': key[1],
                    'assignment_id': key[2],
                    'status': submissions[0]['status'],
                    'submissions': submissions,
                }
            )
        return result

    # -- output -------------------------------------------------------------

    def format_inbound_assignment(self, info: dict) -> str:
        msg = '{course_id} {student_id} {assignment_id} {timestamp}'.format(**info)
        if info['status'] == 'submitted':
            if info['has_local_feedback'] and not info['feedback_updated']:
                msg += ' (feedback already fetched)'
            elif info['has_exchange_feedback']:
                msg += ' (feedback ready to be fetched)'
            else:
                msg += ' (no feedback available)'
        return msg + self.submission_text(info) + self.history_text(info)

    def format_outbound_assignment(self, info: dict) -> str:
        msg = '{course_id} {assignment_id}'.format(**info)
        local = self.local_assignment_dir(info['course_id'], info['assignment_id'])
        if os.path.exists(local):
            msg += ' (already downloaded)'
        return msg + self.released_text(info)

    def list_files(self):
        assignments = self.parse_assignments()
        if self.inbound or self.cached:
            self.log.info('Submitted assignments:')
            for assignment in assignments:
                for info in assignment['submissions']:
                    self.log.info(self.format_inbound_assignment(info))
        else:
            self.log.info('Released assignments:')
            for info in assignments:
                self.log.info(self.format_outbound_assignment(info))
        return assignments

    def remove_files(self):
        if self.inbound:
            self.fail(
                'Cannot remove submissions: ngshare keeps every submission'
                ' (an instructor can only delete the whole assignment)'
            )
        assignments = self.parse_assignments()
        if self.cached:
            self.log.info('Removing submitted assignments:')
            for assignment in assignments:
                for info in assignment['submissions']:
                    self.log.info(self.format_inbound_assignment(info))
            for path in self.assignments:
                shutil.rmtree(path)
            return assignments
        self.log.info('Removing released assignments:')
        for info in assignments:
            self.log.info(self.format_outbound_assignment(info))
        for course_id, assignment_id in self.assignments:
            self.call(
                self.what('remove the released assignment', course_id, assignment_id),
                lambda c=course_id, a=assignment_id: self.client.delete(
                    'assignment', c, a
                ),
            )
        return assignments
