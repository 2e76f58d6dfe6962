"""The documented timestamp format, written without ``strftime``.

``format_timestamp`` is called for every listed submission, so it uses
``isoformat`` (a tenth of the cost); its text must stay exactly what
``strftime('%Y-%m-%d %H:%M:%S.%f') + ' UTC'`` wrote, microseconds always
included, and parse back to the same instant.
"""

from __future__ import annotations

import datetime
import random

from ngshare.timestamps import format_timestamp, parse_timestamp


def test_format_is_the_documented_strftime_text():
    rng = random.Random(7)
    start = datetime.datetime(2000, 1, 1)
    instants = [
        start,
        datetime.datetime(2026, 12, 31, 23, 59, 59, 999999),
        datetime.datetime(2026, 6, 1, 12, 0, 0, 1),
        datetime.datetime(2026, 6, 1, 12, 0, 0, 0),
    ]
    instants += [
        start + datetime.timedelta(microseconds=rng.randrange(10**15))
        for _ in range(2000)
    ]
    for instant in instants:
        text = format_timestamp(instant)
        assert text == instant.strftime('%Y-%m-%d %H:%M:%S.%f') + ' UTC'
        assert parse_timestamp(text) == instant
