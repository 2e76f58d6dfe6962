"""/submissions/... (listing) and /submission/... (submit and collect)"""

from ..operations import submissions
from .base import BaseHandler, after_body


class SubmissionsHandler(BaseHandler):
    @after_body
    async def get(self, course_id, assignment_id):
        await self.answer(submissions.list_submissions, course_id, assignment_id)


class StudentSubmissionsHandler(BaseHandler):
    @after_body
    async def get(self, course_id, assignment_id, student_id):
        await self.answer(
            submissions.list_student_submissions,
            course_id,
            assignment_id,
            student_id,
            quick=submissions.listed_student_submissions,
        )


class SubmitHandler(BaseHandler):
    @after_body
    async def post(self, course_id, assignment_id):
        upload = await self.upload()
        await self.answer(
            submissions.submit, course_id, assignment_id, upload, write=True
        )


class SubmissionHandler(BaseHandler):
    @after_body
    async def get(self, course_id, assignment_id, student_id):
        await self.answer_tree(
            submissions.get_submission,
            submissions.collect_submission,
            course_id,
            assignment_id,
            student_id,
            self.arg('timestamp'),
            quick=submissions.collected_submission,
        )
