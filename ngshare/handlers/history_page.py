"""``PREFIX + 'history'``: a course's history as a page, for people.

The same entries as ``GET /history/<course_id>`` (:mod:`.history`), read by
the same code (:func:`ngshare.operations.history.read_history_page`, which checks
the filters), shown as a filter form and a table that a phone can read. Like
the other pages it runs no script (``PAGE_CSP``): the form is a plain GET
form, the next page a link carrying the API's ``next`` cursor.

Who may look: admins (any course, also a deleted one until it is purged)
and the instructors of the course. The page is a tool for answering "was
it collected?", not a student's view: a student (who may read their own
entries through the API) or an outsider gets the 403 page, like the dump.
A refused filter (400) or an unknown course (404) is shown on the page, in
the API's words, with the form still there to correct it.
"""

from __future__ import annotations

import urllib.parse

from ..database.models import HISTORY_ACTIONS
from ..errors import ApiError
from ..operations.history import read_history_page
from .base import after_body
from .history import PARAMETERS
from .pages import PageHandler

# The page's own parameter beside the API's filters and page.
COURSE = 'course'


def short_time(instant: str) -> str:
    """``2026-12-03 15:10:50 UTC``: an entry's ``time`` to the second, as
    the page shows it (``since`` and ``until`` take it back as it is)."""
    return instant[:19].replace('T', ' ') + ' UTC'


class HistoryPageHandler(PageHandler):
    """``history?course=...&assignment_id=...``: the filter form and a page."""

    @after_body
    async def get(self):
        # An empty field of the form means "any", as an absent parameter.
        values = {name: self.arg(name) or None for name in (COURSE, *PARAMETERS)}
        course = values.pop(COURSE)
        shown = {
            'prefix': self.config.prefix,
            'course': course,
            'values': values,
            'actions': HISTORY_ACTIONS,
            'short_time': short_time,
            'stand_alone_user': self._stand_alone_user(),
            # A link to this page with some filters changed, from page one.
            'link': lambda **changes: self.page_url(
                {COURSE: course, **values, 'cursor': None, **changes}
            ),
            'refused': None,
            'error': None,
            'courses': [],
            'entries': None,
            'next_url': None,
        }
        try:
            answer = await self.run(read_history_page, course, values)
        except ApiError as error:
            if error.status_code != 403:
                raise
            # Nothing of the course, not even the form: the 403 page.
            self.set_status(403)
            shown['refused'] = self.message(error)
            self.render_page('history.html', **shown)
            return
        error = answer['error']
        if error is not None:
            self.set_status(error.status_code)
            shown['error'] = self.message(error)
        shown['courses'], shown['entries'] = answer['courses'], answer['entries']
        if answer['next']:
            shown['next_url'] = self.page_url(
                {COURSE: course, **values, 'cursor': answer['next']}
            )
        self.render_page('history.html', **shown)

    def message(self, error: ApiError) -> str:
        """The refusal in the API's words (with its reason in debug mode)."""
        return error.message_for(self.config.debug)

    def _stand_alone_user(self) -> str | None:
        """Stand-alone, the caller is the ``user`` parameter: links keep it."""
        if self.config.vngshare and self.actor is not None:
            return self.actor.name
        return None

    def page_url(self, parameters: dict) -> str:
        """This page with ``parameters`` (None and empty ones left out)."""
        query = {name: value for name, value in parameters.items() if value}
        user = self._stand_alone_user()
        if user is not None:
            query['user'] = user
        encoded = urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        return self.config.prefix + 'history' + ('?' + encoded if encoded else '')
