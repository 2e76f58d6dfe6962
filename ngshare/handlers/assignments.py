"""/assignments/<course_id> and /assignment/<course_id>/<assignment_id>"""

from ..operations import assignments
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
        await self.answer_tree(assignments.get_assignment, course_id, assignment_id)

    @after_body
    async def post(self, course_id, assignment_id):
        await self.answer(
            assignments.release_assignment,
            course_id,
            assignment_id,
            await self.upload(),
            write=True,
        )

    @after_body
    async def delete(self, course_id, assignment_id):
        await self.answer(
            assignments.delete_assignment, course_id, assignment_id, write=True
        )
