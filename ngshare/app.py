"""The route table, in one place, and the Tornado application around it."""

from __future__ import annotations

import logging
import os
import re

from tornado.web import Application

from .auth import HubAuthenticator, OAuthCallbackHandler
from .handlers.assignments import AssignmentHandler, AssignmentsHandler
from .handlers.base import NotFoundHandler
from .handlers.courses import CourseHandler, CoursesHandler
from .handlers.deadlines import DeadlineHandler, ExtensionHandler
from .handlers.feedback import FeedbackHandler
from .handlers.history import HistoryHandler
from .handlers.history_page import HistoryPageHandler
from .handlers.intake import BodyBudget
from .handlers.pages import (
    DebugHandler,
    FaviconHandler,
    HealthHandler,
    HomeHandler,
    RootRedirectHandler,
)
from .handlers.roster import (
    InstructorHandler,
    InstructorsHandler,
    StudentHandler,
    StudentsHandler,
)
from .handlers.submissions import (
    StudentSubmissionsHandler,
    SubmissionHandler,
    SubmissionsHandler,
    SubmitHandler,
)
from .logsafe import redact
from .metrics import Metrics, MetricsHandler, route_template
from .runtime import Runtime

access_log = logging.getLogger('ngshare.access')

# One path segment: a course, assignment or user name, percent-encoded.
NAME = r'([^/]+)'

API_ROUTES = [
    (r'courses', CoursesHandler),
    (rf'course/{NAME}', CourseHandler),
    (rf'instructor/{NAME}/{NAME}', InstructorHandler),
    (rf'instructors/{NAME}', InstructorsHandler),
    (rf'student/{NAME}/{NAME}', StudentHandler),
    (rf'students/{NAME}', StudentsHandler),
    (rf'assignments/{NAME}', AssignmentsHandler),
    (rf'assignment/{NAME}/{NAME}', AssignmentHandler),
    (rf'submissions/{NAME}/{NAME}', SubmissionsHandler),
    (rf'submissions/{NAME}/{NAME}/{NAME}', StudentSubmissionsHandler),
    (rf'submission/{NAME}/{NAME}', SubmitHandler),
    (rf'submission/{NAME}/{NAME}/{NAME}', SubmissionHandler),
    (rf'feedback/{NAME}/{NAME}/{NAME}', FeedbackHandler),
    (rf'deadline/{NAME}/{NAME}', DeadlineHandler),
    (rf'extension/{NAME}/{NAME}/{NAME}', ExtensionHandler),
    (rf'history/{NAME}', HistoryHandler),
    (r'history', HistoryPageHandler),
    (r'initialize-Data6ase', DebugHandler),
    (r'favicon\.ico', FaviconHandler),
    (r'healthz', HealthHandler),
]


def make_app(runtime: Runtime, cookie_secret: bytes) -> Application:
    config = runtime.config
    prefix = re.escape(config.prefix)
    handler_args = {'runtime': runtime}
    routes = [(r'/healthz/?', HealthHandler, handler_args)]
    routes += [
        (prefix + pattern + '/?', handler, handler_args)
        for pattern, handler in API_ROUTES
    ]
    metrics = None
    if config.metrics:
        labels = {handler: route_template(p, handler) for p, handler in API_ROUTES}
        labels.update({HomeHandler: '/', OAuthCallbackHandler: '/oauth_callback'})
        labels[MetricsHandler] = '/metrics'
        metrics = Metrics(labels)
        routes.append(
            (
                prefix + 'metrics/?',
                MetricsHandler,
                {**handler_args, 'metrics': metrics},
            )
        )
    routes.append((prefix + '?', HomeHandler, handler_args))
    if config.vngshare and config.prefix != '/':
        # Stand-alone, the server's root is ours too: send a visitor of
        # http://HOST:PORT/ to the welcome page (the query, e.g. ?user=,
        # kept). Under the Hub only the prefix is routed to us.
        routes.append((r'/', RootRedirectHandler, handler_args))
    if isinstance(runtime.authenticator, HubAuthenticator):
        routes.append(
            (
                prefix + 'oauth_callback',
                OAuthCallbackHandler,
                {'hub_auth': runtime.authenticator.hub_auth},
            )
        )
    here = os.path.dirname(os.path.abspath(__file__))
    return Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args=handler_args,
        template_path=os.path.join(here, 'templates'),
        cookie_secret=cookie_secret,
        log_function=log_request,
        metrics=metrics,
        # Bytes of request bodies held at once, all requests together.
        body_budget=BodyBudget(config.max_buffered_size),
        debug=False,
        serve_traceback=config.debug,
        # The welcome page's debug forms carry Tornado's _xsrf token; its
        # cookie, like the login cookie, is not sent on cross-site requests.
        xsrf_cookie_kwargs={'samesite': 'Lax'},
    )


def log_request(handler) -> None:
    """Access log that never contains a token (headers are never logged).

    Also where every answered request is counted, with ``--metrics``.
    """
    metrics = handler.application.settings.get('metrics')
    if metrics is not None:
        metrics.observe(handler)
    status = handler.get_status()
    if status < 400 or status == 404:
        level = logging.INFO
    elif status < 500:
        level = logging.WARNING
    else:
        level = logging.ERROR
    if handler.request.path.rstrip('/').endswith('healthz') and status == 200:
        level = logging.DEBUG
    request = handler.request
    actor = getattr(handler, 'actor', None)
    access_log.log(
        level,
        '%d %s %s (%s%s) %.2fms',
        status,
        request.method,
        redact(request.uri),
        request.remote_ip,
        f' {actor.name}' if actor else '',
        1000.0 * request.request_time(),
    )


__all__ = ['API_ROUTES', 'make_app']
