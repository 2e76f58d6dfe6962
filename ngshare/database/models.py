"""The database schema, as typed SQLAlchemy 2.0 models.

Table and column names continue those of ngshare 0.6.0 where the meaning is
unchanged (``users.id``, ``courses._id``/``courses.id``, ...), so that the
migration from a 0.6.0 database is a normalisation rather than a rewrite.
What changed, and why:

* Every uniqueness rule the API relies on is a database constraint
  (course name; assignment name within a course; one roster entry per user
  and course; one submission per student and timestamp), so that two
  concurrent requests can never both succeed: the loser hits the constraint
  and answers 409.
* The two roster association tables became one ``roster`` table with a
  ``role``. A user is either an instructor or a student of a course, never
  both, and the unique (course, user) pair says so.
* Files point at their owner (assignment, submission or feedback) with a
  foreign key instead of three association tables whose ``left_id`` was TEXT
  while it referenced INTEGER keys (invalid on PostgreSQL).
* Deleting a course cascades to its roster and assignments, an assignment to
  its submissions and files, in the database itself.
* Blobs whose last row is gone are recorded in ``released_blobs`` and
  removed after a grace period, so that a download in flight completes.
* ``history`` records every exchange action, in the action's own
  transaction; it names courses and people as text, without foreign keys,
  so that it outlives what it describes.
"""

from __future__ import annotations

import datetime
from typing import Optional

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Deterministic constraint names, so that Alembic (and batch mode on SQLite)
# can address every constraint by name on every database.
NAMING_CONVENTION = {
    'ix': 'ix_%(column_0_label)s',
    'uq': 'uq_%(table_name)s_%(column_0_name)s',
    'ck': 'ck_%(table_name)s_%(constraint_name)s',
    'fk': 'fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s',
    'pk': 'pk_%(table_name)s',
}

INSTRUCTOR = 'instructor'
STUDENT = 'student'

# What happens to a submission after the due date (plus grace): ``accept``
# it, marked late (0.6.0's behaviour, the default), or ``refuse`` it.
ACCEPT_LATE = 'accept'
REFUSE_LATE = 'refuse'


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """A JupyterHub user, known by name only."""

    __tablename__ = 'users'

    id: Mapped[str] = mapped_column(Text, primary_key=True)


class Course(Base):
    __tablename__ = 'courses'

    _id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id: Mapped[str] = mapped_column(Text, unique=True)

    roster: Mapped[list[RosterEntry]] = relationship(
        back_populates='course',
        cascade='all, delete-orphan',
        passive_deletes=True,
        order_by='RosterEntry._id',
    )
    assignments: Mapped[list[Assignment]] = relationship(
        back_populates='course',
        cascade='all, delete-orphan',
        passive_deletes=True,
        order_by='Assignment._id',
    )


class RosterEntry(Base):
    """A user's role in a course, with the names and email the roster holds."""

    __tablename__ = 'roster'
    __table_args__ = (
        UniqueConstraint('course_id', 'user_id', name='uq_roster_course_user'),
        CheckConstraint(f"role IN ('{INSTRUCTOR}', '{STUDENT}')", name='role'),
        Index('ix_roster_user_id', 'user_id'),
    )

    _id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(
        ForeignKey('courses._id', ondelete='CASCADE')
    )
    user_id: Mapped[str] = mapped_column(ForeignKey('users.id'))
    role: Mapped[str] = mapped_column(String(16))
    first_name: Mapped[Optional[str]] = mapped_column(Text)
    last_name: Mapped[Optional[str]] = mapped_column(Text)
    email: Mapped[Optional[str]] = mapped_column(Text)

    course: Mapped[Course] = relationship(back_populates='roster')


class Assignment(Base):
    __tablename__ = 'assignments'
    __table_args__ = (
        UniqueConstraint('course_id', 'id', name='uq_assignments_course_name'),
        CheckConstraint(
            f"late_policy IN ('{ACCEPT_LATE}', '{REFUSE_LATE}')", name='late_policy'
        ),
        CheckConstraint('grace_seconds >= 0', name='grace_seconds'),
    )

    _id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id: Mapped[str] = mapped_column(Text)
    course_id: Mapped[int] = mapped_column(
        ForeignKey('courses._id', ondelete='CASCADE')
    )
    # The due date (naive UTC), None for none; see ngshare/deadlines.py.
    due: Mapped[Optional[datetime.datetime]] = mapped_column(DateTime)
    late_policy: Mapped[str] = mapped_column(
        String(16), default=ACCEPT_LATE, server_default=ACCEPT_LATE
    )
    # With ``refuse``: submissions close this long after the due date.
    grace_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default='0')

    course: Mapped[Course] = relationship(back_populates='assignments')
    files: Mapped[list[File]] = relationship(
        foreign_keys='File.assignment_id',
        cascade='all, delete-orphan',
        passive_deletes=True,
        order_by='File._id',
    )
    submissions: Mapped[list[Submission]] = relationship(
        back_populates='assignment',
        cascade='all, delete-orphan',
        passive_deletes=True,
        order_by='Submission._id',
    )


class Submission(Base):
    """One submission of one student; its feedback hangs off it too."""

    __tablename__ = 'submissions'
    __table_args__ = (
        UniqueConstraint(
            'assignment_id',
            'student_id',
            'timestamp',
            name='uq_submissions_assignment_student_timestamp',
        ),
        Index('ix_submissions_assignment_student', 'assignment_id', 'student_id'),
    )

    _id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        ForeignKey('assignments._id', ondelete='CASCADE')
    )
    # Naive UTC with microseconds, as 0.6.0 stored it.
    timestamp: Mapped[datetime.datetime] = mapped_column(DateTime)
    student_id: Mapped[str] = mapped_column(ForeignKey('users.id'))
    # The due date that applied to this student when they submitted (their
    # extension included), None for none: the submission's lateness is
    # what the server decided then, whatever the due date becomes later.
    due: Mapped[Optional[datetime.datetime]] = mapped_column(DateTime)

    assignment: Mapped[Assignment] = relationship(back_populates='submissions')
    files: Mapped[list[File]] = relationship(
        foreign_keys='File.submission_id',
        cascade='all, delete-orphan',
        passive_deletes=True,
        order_by='File._id',
    )
    feedback: Mapped[list[File]] = relationship(
        foreign_keys='File.feedback_id',
        cascade='all, delete-orphan',
        passive_deletes=True,
        order_by='File._id',
    )


class File(Base):
    """One entry of a directory tree; its bytes live in the blob store.

    ``actual_name`` is the blob's key relative to the storage folder: a
    content-hash path for files written by this version, the flat UUID name
    for files written by 0.6.0.
    """

    __tablename__ = 'files'
    __table_args__ = (
        CheckConstraint(
            '(CASE WHEN assignment_id IS NULL THEN 0 ELSE 1 END)'
            ' + (CASE WHEN submission_id IS NULL THEN 0 ELSE 1 END)'
            ' + (CASE WHEN feedback_id IS NULL THEN 0 ELSE 1 END) = 1',
            name='one_owner',
        ),
        Index('ix_files_assignment_id', 'assignment_id'),
        Index('ix_files_submission_id', 'submission_id'),
        Index('ix_files_feedback_id', 'feedback_id'),
        Index('ix_files_actual_name', 'actual_name'),
    )

    _id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(Text)
    actual_name: Mapped[str] = mapped_column(Text)
    size: Mapped[Optional[int]] = mapped_column(Integer)
    assignment_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey('assignments._id', ondelete='CASCADE')
    )
    submission_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey('submissions._id', ondelete='CASCADE')
    )
    feedback_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey('submissions._id', ondelete='CASCADE')
    )


class Extension(Base):
    """A later due date for one student of one assignment.

    It applies only while the assignment has a due date, and never moves a
    student's due date earlier (see :func:`ngshare.deadlines.effective_due`).
    """

    __tablename__ = 'extensions'
    __table_args__ = (
        UniqueConstraint(
            'assignment_id', 'student_id', name='uq_extensions_assignment_student'
        ),
    )

    _id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        ForeignKey('assignments._id', ondelete='CASCADE')
    )
    student_id: Mapped[str] = mapped_column(ForeignKey('users.id'))
    # Naive UTC.
    due: Mapped[datetime.datetime] = mapped_column(DateTime)


DELETED_COURSE = 'course'
DELETED_ASSIGNMENT = 'assignment'


class DeletedItem(Base):
    """A deleted course or assignment, kept restorable for a while.

    ``nbgrader release_assignment --force`` deletes an assignment with every
    submission to it before posting it again. The API answers as documented
    (the submissions are gone), but the rows live on here as JSON and their
    blobs stay on disk until the retention period ends, so an administrator
    can restore them.
    """

    __tablename__ = 'deleted_items'
    __table_args__ = (
        CheckConstraint(
            f"kind IN ('{DELETED_COURSE}', '{DELETED_ASSIGNMENT}')", name='kind'
        ),
        Index('ix_deleted_items_deleted_at', 'deleted_at'),
    )

    _id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    course_name: Mapped[str] = mapped_column(Text)
    assignment_name: Mapped[Optional[str]] = mapped_column(Text)
    deleted_at: Mapped[datetime.datetime] = mapped_column(DateTime)
    deleted_by: Mapped[str] = mapped_column(Text)
    # The deleted rows (roster, assignments, files, submissions, feedback).
    payload: Mapped[str] = mapped_column(Text)

    blobs: Mapped[list[DeletedBlob]] = relationship(
        cascade='all, delete-orphan', passive_deletes=True
    )


class DeletedBlob(Base):
    """A blob a deleted item refers to: the garbage collector keeps it."""

    __tablename__ = 'deleted_blobs'
    __table_args__ = (Index('ix_deleted_blobs_actual_name', 'actual_name'),)

    item_id: Mapped[int] = mapped_column(
        ForeignKey('deleted_items._id', ondelete='CASCADE'), primary_key=True
    )
    actual_name: Mapped[str] = mapped_column(Text, primary_key=True)


class ReleasedBlob(Base):
    """A blob whose last row a write dropped, kept for a grace period.

    A download that read the old rows before that write may still be
    streaming the blob (on this replica or another), so it is removed only
    once ``released_at`` is older than ``--released-blob-grace``, and only if
    no row refers to it again (see :mod:`ngshare.operations.released`). The
    column is not called ``actual_name``: a record does not keep its blob
    referenced, it schedules its removal.
    """

    __tablename__ = 'released_blobs'
    __table_args__ = (Index('ix_released_blobs_released_at', 'released_at'),)

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    # Naive UTC, as every timestamp of the schema.
    released_at: Mapped[datetime.datetime] = mapped_column(DateTime)


# The actions ``history`` records (docs/api.md, "History").
HISTORY_ACTIONS = (
    'create_course',
    'delete_course',
    'add_instructor',
    'remove_instructor',
    'add_student',
    'remove_student',
    'release',
    'unrelease',
    'fetch',
    'submit',
    'collect',
    'release_feedback',
    'fetch_feedback',
    'restore',
    'purge',
)


class HistoryEntry(Base):
    """One exchange action: who did what, in which course, when.

    Written in the transaction of the action itself (:mod:`ngshare.
    operations.history`), so a committed action always has its entry and a
    rolled-back one none. Course, assignment and people are names, not
    foreign keys: a course's history outlives the course until its deleted
    item is purged, and the retention setting alone ages entries out.
    ``_id`` orders the entries and is the cursor of the history pages.
    ``deleted_item`` marks the entries of a deleted course (the id of its
    ``deleted_items`` row, no foreign key: the purge removes both): only
    admins see them, so a new course of the same name does not show its
    members the old one's students; a restore unmarks them.
    """

    __tablename__ = 'history'
    __table_args__ = (
        CheckConstraint(
            'action IN (' + ', '.join(f"'{name}'" for name in HISTORY_ACTIONS) + ')',
            name='action',
        ),
        # A page of a course, of one of its students, of one assignment,
        # newest or oldest first: one index range each, whatever the size.
        Index('ix_history_course_id', 'course', '_id'),
        Index('ix_history_course_student_id', 'course', 'student', '_id'),
        Index('ix_history_course_assignment_id', 'course', 'assignment', '_id'),
        Index('ix_history_time', 'time'),
        Index('ix_history_deleted_item', 'deleted_item'),
    )

    _id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Naive UTC, as every timestamp of the schema: when it happened.
    time: Mapped[datetime.datetime] = mapped_column(DateTime)
    action: Mapped[str] = mapped_column(String(32))
    # Who acted (a user, or ``ngshare-admin`` / ``ngshare`` for the tools).
    user: Mapped[str] = mapped_column(Text)
    course: Mapped[str] = mapped_column(Text)
    assignment: Mapped[Optional[str]] = mapped_column(Text)
    # The student concerned: added, removed, fetching, submitting,
    # collected or given feedback.
    student: Mapped[Optional[str]] = mapped_column(Text)
    # The submission's timestamp (submit, collect, feedback), naive UTC.
    timestamp: Mapped[Optional[datetime.datetime]] = mapped_column(DateTime)
    files: Mapped[Optional[int]] = mapped_column(Integer)
    bytes: Mapped[Optional[int]] = mapped_column(BigInteger)
    deleted_item: Mapped[Optional[int]] = mapped_column(Integer)
