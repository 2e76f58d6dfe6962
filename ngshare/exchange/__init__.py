"""ngshare's exchange plugin for nbgrader (``pip install ngshare[exchange]``).

In ``nbgrader_config.py`` (usually ``/etc/jupyter/nbgrader_config.py``)::

    from ngshare.exchange import configureExchange

    c = get_config()
    configureExchange(c, 'http://127.0.0.1:10101/services/ngshare')
    c.CourseDirectory.course_id = '*'

It replaces ``ngshare_exchange`` (same call, same configuration, same local
layout); see ``docs/exchange.md``.
"""

from __future__ import annotations

from .client import KUBERNETES_URL, NgshareClient, NgshareError
from .collect import ExchangeCollect
from .exchange import Exchange
from .fetch_assignment import ExchangeFetchAssignment
from .fetch_feedback import ExchangeFetchFeedback
from .list import ExchangeList
from .release_assignment import ExchangeReleaseAssignment
from .release_feedback import ExchangeReleaseFeedback
from .submit import ExchangeSubmit

__all__ = [
    'KUBERNETES_URL',
    'Exchange',
    'ExchangeCollect',
    'ExchangeFetchAssignment',
    'ExchangeFetchFeedback',
    'ExchangeList',
    'ExchangeReleaseAssignment',
    'ExchangeReleaseFeedback',
    'ExchangeSubmit',
    'NgshareClient',
    'NgshareError',
    'configureExchange',
    'configure_exchange',
]


def configure_exchange(c, ngshare_url: str | None = None) -> None:
    """Make nbgrader use ngshare at ``ngshare_url`` for every exchange step.

    ``c`` is the configuration object of ``nbgrader_config.py``
    (``get_config()``). Without a URL, ngshare is found only in Zero to
    JupyterHub (``http://proxy-public/services/ngshare``); elsewhere every
    exchange command then fails with a message asking for the URL.
    """
    c.ExchangeFactory.exchange = Exchange
    c.ExchangeFactory.fetch_assignment = ExchangeFetchAssignment
    c.ExchangeFactory.fetch_feedback = ExchangeFetchFeedback
    c.ExchangeFactory.release_assignment = ExchangeReleaseAssignment
    c.ExchangeFactory.release_feedback = ExchangeReleaseFeedback
    c.ExchangeFactory.list = ExchangeList
    c.ExchangeFactory.submit = ExchangeSubmit
    c.ExchangeFactory.collect = ExchangeCollect
    if ngshare_url:
        c.Exchange.ngshare_url = ngshare_url


#: The name ngshare_exchange uses.
configureExchange = configure_exchange
