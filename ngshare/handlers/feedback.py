"""/feedback/<course_id>/<assignment_id>/<student_id>"""

from ..operations import feedback
from .base import BaseHandler, after_body


class FeedbackHandler(BaseHandler):
    @after_body
    async def get(self, course_id, assignment_id, student_id):
        await self.answer_tree(
            feedback.get_feedback,
            feedback.fetch_feedback,
            course_id,
            assignment_id,
            student_id,
            self.arg('timestamp'),
            quick=feedback.fetched_feedback,
        )

    @after_body
    async def post(self, course_id, assignment_id, student_id):
        await self.answer(
            feedback.upload_feedback,
            course_id,
            assignment_id,
            student_id,
            self.arg('timestamp'),
            await self.upload(),
            write=True,
        )
