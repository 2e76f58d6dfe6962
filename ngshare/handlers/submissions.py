"""/submissions/... (listing) and /submission/... (submit and collect)"""

from ..operations import submissions
from .base import BaseHandler


class SubmissionsHandler(BaseHandler):
    async def get(self, course_id, assignment_id):
        await self.answer(submissions.list_submissions, course_id, assignment_id)


class StudentSubmissionsHandler(BaseHandler):
    async def get(self, course_id, assignment_id, student_id):
        await self.answer(
            submissions.list_student_submissions, course_id, assignment_id, student_id
        )


class SubmitHandler(BaseHandler):
    async def post(self, course_id, assignment_id):
        await self.answer(
            submissions.submit, course_id, assignment_id, self.arg('files'), write=True
        )


class SubmissionHandler(BaseHandler):
    async def get(self, course_id, assignment_id, student_id):
        await self.answer_tree(
            submissions.get_submission,
            course_id,
            assignment_id,
            student_id,
            self.arg('timestamp'),
        )
