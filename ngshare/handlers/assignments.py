"""/assignments/<course_id> and /assignment/<course_id>/<assignment_id>"""

from ..operations import assignments
from ..operations.deadlines import DEADLINE_FIELDS
from .base import BaseHandler, after_body


class AssignmentsHandler(BaseHandler):
    @after_body
    async def get(self, course_id):
        await self.answer(
            assignments.list_assignments,
            course_id,
            quick=assignments.listed_assignments,
        )


class AssignmentHandler(BaseHandler):
    @after_body
    async def get(self, course_id, assignment_id):
        await self.answer_tree(
            assignments.get_assignment,
            assignments.fetch_assignment,
            course_id,
            assignment_id,
        )

    @after_body
    async def post(self, course_id, assignment_id):
        # The optional deadline fields (due, late_policy, grace_seconds),
        # read first: one that is no UTF-8 is refused before the upload
        # writes a blob.
        deadline = {name: self.arg(name) for name in DEADLINE_FIELDS}
        upload = await self.upload()
        await self.answer(
            assignments.release_assignment,
            course_id,
            assignment_id,
            upload,
            deadline,
            write=True,
        )

    @after_body
    async def delete(self, course_id, assignment_id):
        await self.answer(
            assignments.delete_assignment, course_id, assignment_id, write=True
        )
