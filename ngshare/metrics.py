"""Prometheus metrics, served at ``PREFIX + 'metrics'`` with ``--metrics``.

Off by default. When on, only the ``--admins`` may read them, as any other
request authenticated by their JupyterHub token (or, stand-alone, by the
``user`` parameter); others get 403 ``Permission denied``, anonymous callers
401 ``Login required`` (never the Hub login redirect: a scraper cannot
follow it). Without ``--metrics`` the path answers 404 like any unknown one.

What is measured, per process (each replica answers for itself):

``ngshare_requests_total{route, method, status}``
    Answered requests. ``route`` is the route pattern relative to the
    prefix, e.g. ``/submission/<course_id>/<assignment_id>``, never the
    requested path (course and user names stay out of the metrics, and the
    number of series stays bounded); ``(unmatched)`` for paths no route
    serves.
``ngshare_request_duration_seconds{route, method}``
    Time from the first byte of the request to the last of the answer.
``ngshare_submissions_stored_total``
    Submissions accepted (``POST /submission/...`` answered 200).
``ngshare_stored_bytes_total{kind}`` and ``ngshare_stored_files_total{kind}``
    Decoded size and number of the files of accepted uploads, by ``kind``:
    ``assignment`` (release), ``submission``, ``feedback``. Content stored
    before is counted again (the blob store keeps it once).

plus the standard ``process_*`` and ``python_*`` collectors.

Everything is counted in :func:`observe`, which the application's access
log (``ngshare.app.log_request``) calls once per answered request, so the
operations stay free of bookkeeping. The sizes of an accepted upload are
those of the tree the handler prepared (``BaseHandler.prepared``): nothing
is decoded twice.
"""

from __future__ import annotations

import inspect
import json
import re

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from .auth import LOGIN_REQUIRED
from .handlers.assignments import AssignmentHandler
from .handlers.base import BaseHandler, after_body
from .handlers.feedback import FeedbackHandler
from .handlers.submissions import SubmitHandler
from .permissions import require_admin

UNMATCHED = '(unmatched)'
METHODS = frozenset({'GET', 'HEAD', 'POST', 'DELETE', 'PATCH', 'PUT', 'OPTIONS'})
# Seconds; uploads and downloads of whole assignments can take a while.
DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    float('inf'),
)
# Successful POSTs whose ``files`` are counted, by handler class.
UPLOAD_KINDS = {
    AssignmentHandler: 'assignment',
    SubmitHandler: 'submission',
    FeedbackHandler: 'feedback',
}

_GROUP = re.compile(r'\([^)]*\)')
_ESCAPE = re.compile(r'\\(.)')


def route_template(pattern: str, handler: type) -> str:
    """``submission/([^/]+)/([^/]+)`` -> ``/submission/<course_id>/<assignment_id>``.

    The names are the parameters of the handler's methods.
    """
    names: list[str] = []
    for method in ('get', 'post', 'delete'):
        function = getattr(handler, method, None)
        if function is None or function is getattr(BaseHandler, method, None):
            continue
        parameters = list(inspect.signature(function).parameters)[1:]
        if parameters:
            names = parameters
            break
    position = iter(range(pattern.count('(')))

    def name(_match: re.Match) -> str:
        index = next(position)
        return f'<{names[index]}>' if index < len(names) else f'<arg{index}>'

    return '/' + _ESCAPE.sub(r'\1', _GROUP.sub(name, pattern))


class Metrics:
    """The counters of one application, in a registry of their own."""

    def __init__(self, routes: dict[type, str]):
        self.routes = dict(routes)
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Counter(
            'ngshare_requests',
            'Requests answered, by route pattern, method and status code.',
            ['route', 'method', 'status'],
            registry=self.registry,
        )
        self.duration = Histogram(
            'ngshare_request_duration_seconds',
            'Time to answer a request, by route pattern and method.',
            ['route', 'method'],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.submissions = Counter(
            'ngshare_submissions_stored',
            'Submissions accepted (POST /submission answered 200).',
            registry=self.registry,
        )
        self.stored_bytes = Counter(
            'ngshare_stored_bytes',
            'Decoded bytes of the files of accepted uploads, by kind.',
            ['kind'],
            registry=self.registry,
        )
        self.stored_files = Counter(
            'ngshare_stored_files',
            'Files of accepted uploads, by kind.',
            ['kind'],
            registry=self.registry,
        )
        for kind in UPLOAD_KINDS.values():
            self.stored_bytes.labels(kind)
            self.stored_files.labels(kind)

    def route_of(self, handler) -> str:
        return self.routes.get(type(handler), UNMATCHED)

    def observe(self, handler) -> None:
        """Count one answered request (called from the access log)."""
        request = handler.request
        status = handler.get_status()
        route = self.route_of(handler)
        method = request.method if request.method in METHODS else 'other'
        self.requests.labels(route, method, str(status)).inc()
        self.duration.labels(route, method).observe(request.request_time())
        kind = UPLOAD_KINDS.get(type(handler))
        if kind is None or method != 'POST' or status != 200:
            return
        if kind == 'submission':
            self.submissions.inc()
        prepared = getattr(handler, 'prepared', None)
        if prepared is not None:
            self.stored_files.labels(kind).inc(len(prepared.files))
            self.stored_bytes.labels(kind).inc(prepared.size)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsHandler(BaseHandler):
    """``GET PREFIX/metrics``: the Prometheus text format, for admins."""

    def initialize(self, runtime, metrics: Metrics):
        super().initialize(runtime)
        self.metrics = metrics

    def refuse_anonymous(self):
        # A scraper cannot follow the Hub's login redirect: always 401.
        self.set_status(401)
        self.finish(json.dumps({'success': False, 'message': LOGIN_REQUIRED}))

    @after_body
    def get(self):
        require_admin(self.actor)
        self.set_header('Content-Type', CONTENT_TYPE_LATEST)
        self.finish(self.metrics.exposition())


__all__ = ['Metrics', 'MetricsHandler', 'route_template']
