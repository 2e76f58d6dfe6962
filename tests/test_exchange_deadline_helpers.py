"""The plugin's pure deadline helpers (``ngshare.exchange.deadlines``): how
ngshare's instants are read, shown in local time (``TZ``), and how a date an
instructor types becomes UTC."""

from __future__ import annotations

import datetime
import time

import pytest

from ngshare.exchange.deadlines import (
    DateError,
    from_wire,
    how_late,
    human_duration,
    local_text,
    parse_user_date,
    to_wire,
)

NOON = datetime.datetime(2026, 12, 1, 12, 0, 0)


@pytest.fixture
def zone(monkeypatch):
    def use(name: str) -> None:
        monkeypatch.setenv('TZ', name)
        time.tzset()

    yield use
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ('seconds', 'text'),
    [
        (0, 'less than a second'),
        (0.7, 'less than a second'),
        (1, '1 second'),
        (59.9, '59 seconds'),
        (192, '3 minutes 12 seconds'),
        (3600, '1 hour'),
        (3605, '1 hour'),  # no "1 hour 5 seconds" hiding the minutes
        (3660, '1 hour 1 minute'),
        (2 * 86400 + 3 * 3600 + 7, '2 days 3 hours'),
    ],
)
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


def test_how_late():
    assert how_late({'late': False, 'seconds_late': 0}) == 'on time'
    assert (
        how_late({'late': True, 'seconds_late': 192.5}) == '3 minutes 12 seconds late'
    )
    assert how_late({}) == ''  # a server that does not judge


def test_wire_texts_both_ways():
    assert to_wire(NOON) == '2026-12-01T12:00:00+00:00'
    assert from_wire('2026-12-01T12:00:00+00:00') == NOON
    assert from_wire('2026-12-01T13:00:00.5+01:00') == NOON.replace(microsecond=500000)
    for nothing in (None, '', 'soon', 42):
        assert from_wire(nothing) is None


def test_local_text_follows_tz(zone):
    zone('IST-05:30')
    assert local_text(NOON) == '2026-12-01 17:30:00 IST'
    zone('UTC')
    assert local_text(NOON) == '2026-12-01 12:00:00 UTC'
    assert local_text(None) == 'none'


def test_user_dates(zone):
    zone('XYZ+03')  # three hours behind UTC
    assert parse_user_date('2026-12-01T09:00') == NOON
    assert parse_user_date(' 2026-12-01 09:00 ') == NOON
    assert parse_user_date('2026-12-01T12:00Z') == NOON
    assert parse_user_date('2026-12-01T13:00+01:00') == NOON
    for bad in ('tomorrow', '2026-13-01', '', '12:00'):
        with pytest.raises(DateError, match='cannot read the date'):
            parse_user_date(bad)
