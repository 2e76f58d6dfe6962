"""/courses and /course/<course_id>"""

from ..operations import courses
from .base import BaseHandler, after_body


class CoursesHandler(BaseHandler):
    @after_body
    async def get(self):
        await self.answer(courses.list_courses)


class CourseHandler(BaseHandler):
    @after_body
    async def post(self, course_id):
        await self.answer(
            courses.create_course, course_id, self.arg('instructors'), write=True
        )

    @after_body
    async def delete(self, course_id):
        await self.answer(courses.delete_course, course_id, write=True)
