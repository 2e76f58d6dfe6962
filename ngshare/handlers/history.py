"""/history/<course_id>: who did what, when, in a course."""

from ..operations import history
from .base import BaseHandler, after_body

# The query parameters of a history page (docs/api.md, "History").
PARAMETERS = (
    'assignment_id',
    'student_id',
    'action',
    'since',
    'until',
    'order',
    'limit',
    'cursor',
)


class HistoryHandler(BaseHandler):
    @after_body
    async def get(self, course_id):
        arguments = {name: self.arg(name) for name in PARAMETERS}
        await self.answer(history.read_history, course_id, arguments)
