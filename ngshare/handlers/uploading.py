"""An upload's tree made ready in the worker pool, before its transaction.

The handler's part of :mod:`ngshare.operations.uploads`: the tree is taken
out of the request (the ``files`` field, or a raw-parts upload's manifest
and file parts), so that its text is freed as soon as it is decoded, and
handed to a worker thread that decodes it, hashes each file once and
writes its blobs. Nothing large is decoded or copied on the event loop.
"""

from __future__ import annotations

from functools import partial

from tornado.ioloop import IOLoop

from ..operations.uploads import PreparedUpload, prepare_form, prepare_parts
from .forms import MANIFEST, TREE_FIELD, form_text

__all__ = ['prepare_upload']


async def prepare_upload(handler) -> PreparedUpload:
    """The tree of ``handler``'s request, decoded, hashed and stored.

    A tree that cannot be decoded is refused later, by the operation, where
    it always was (:class:`~ngshare.operations.uploads.PreparedUpload`).
    """
    config, store = handler.config, handler.runtime.store
    request = handler.request
    # Handed over in lists that the worker empties, so that nothing here
    # keeps the text alive while it is decoded.
    parts, handler._raw_parts = handler._raw_parts, None
    name = TREE_FIELD if parts is None else MANIFEST
    values = [request.arguments.pop(name, None)]
    request.body_arguments.pop(name, None)
    if parts is None:
        prepare = partial(_prepare_form, handler, values, store, config.max_file_size)
    else:
        prepare = partial(
            _prepare_parts, handler, values, [parts], store, config.max_file_size
        )
    del parts
    return await IOLoop.current().run_in_executor(handler.runtime.pool, prepare)


def _prepare_form(handler, values, store, max_file_size) -> PreparedUpload:
    """In the pool: the ``files`` field's text (as ``get_argument`` gives
    it), decoded and stored. ``values`` holds the field's values, taken."""
    files_json = form_text(handler, TREE_FIELD, values.pop())
    return prepare_form(store, files_json, max_file_size)


def _prepare_parts(handler, values, parts, store, max_file_size) -> PreparedUpload:
    """In the pool: a raw-parts upload, checked and stored. ``values`` holds
    the manifest's values, ``parts`` the file parts, both taken."""
    manifest = form_text(handler, MANIFEST, values.pop())
    return prepare_parts(store, manifest, parts.pop(), max_file_size)
