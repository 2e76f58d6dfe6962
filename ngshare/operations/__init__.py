"""What each endpoint does, as plain functions of one unit of work.

Every operation takes a :class:`~ngshare.operations.context.Context` (the
database session of its transaction, the blob store and the caller) and
returns the JSON-ready fields of a successful answer, or raises
:class:`~ngshare.errors.ApiError`. They run in a worker thread, never on
the event loop, and know nothing of HTTP.
"""
