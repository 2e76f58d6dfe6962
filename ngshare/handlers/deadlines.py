"""/deadline/<course_id>/<assignment_id> and
/extension/<course_id>/<assignment_id>/<student_id>"""

from ..operations import deadlines
from .base import BaseHandler, after_body


class DeadlineHandler(BaseHandler):
    @after_body
    async def get(self, course_id, assignment_id):
        await self.answer(deadlines.get_deadline, course_id, assignment_id)

    @after_body
    async def post(self, course_id, assignment_id):
        fields = {name: self.arg(name) for name in deadlines.DEADLINE_FIELDS}
        await self.answer(
            deadlines.set_deadline, course_id, assignment_id, fields, write=True
        )


class ExtensionHandler(BaseHandler):
    @after_body
    async def post(self, course_id, assignment_id, student_id):
        await self.answer(
            deadlines.set_extension,
            course_id,
            assignment_id,
            student_id,
            self.arg('due'),
            write=True,
        )

    @after_body
    async def delete(self, course_id, assignment_id, student_id):
        await self.answer(
            deadlines.remove_extension,
            course_id,
            assignment_id,
            student_id,
            write=True,
        )
