"""/instructor, /instructors, /student, /students"""

from ..operations import roster
from .base import BaseHandler, after_body


class _PersonHandler(BaseHandler):
    def person_fields(self) -> dict:
        return {name: self.arg(name) for name in ('first_name', 'last_name', 'email')}


class InstructorHandler(_PersonHandler):
    @after_body
    async def get(self, course_id, user_id):
        await self.answer(roster.get_instructor, course_id, user_id)

    @after_body
    async def post(self, course_id, user_id):
        await self.answer(
            roster.set_instructor, course_id, user_id, self.person_fields(), write=True
        )

    @after_body
    async def delete(self, course_id, user_id):
        await self.answer(roster.remove_instructor, course_id, user_id, write=True)


class InstructorsHandler(BaseHandler):
    @after_body
    async def get(self, course_id):
        await self.answer(roster.list_instructors, course_id)


class StudentHandler(_PersonHandler):
    @after_body
    async def get(self, course_id, user_id):
        await self.answer(roster.get_student, course_id, user_id)

    @after_body
    async def post(self, course_id, user_id):
        await self.answer(
            roster.set_student, course_id, user_id, self.person_fields(), write=True
        )

    @after_body
    async def delete(self, course_id, user_id):
        await self.answer(roster.remove_student, course_id, user_id, write=True)


class StudentsHandler(BaseHandler):
    @after_body
    async def get(self, course_id):
        await self.answer(roster.list_students, course_id)

    @after_body
    async def post(self, course_id):
        await self.answer(
            roster.add_students, course_id, self.arg('students'), write=True
        )
