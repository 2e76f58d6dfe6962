"""/courses and /course/<course_id>"""

from ..operations import courses
from .base import BaseHandler


class CoursesHandler(BaseHandler):
    async def get(self):
        await self.answer(courses.list_courses)


class CourseHandler(BaseHandler):
    async def post(self, course_id):
        await self.answer(
            courses.create_course, course_id, self.arg('instructors'), write=True
        )

    async def delete(self, course_id):
        await self.answer(courses.delete_course, course_id, write=True)
