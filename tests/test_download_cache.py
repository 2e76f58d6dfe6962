"""Tree downloads: their Content-Length, and the cache of encoded blobs.

A release fetched by a whole class used to be read and base64-encoded once
per student, and sent with chunked framing that copied every piece. Now the
answer's length is computed from the blobs' sizes before the first byte
(``Content-Length``: no framing), and the encoded pieces of small blobs are
kept in a byte-bounded cache (:mod:`ngshare.encoded_cache`) for the next
answers. Guarded here without a clock:

* **the cache alone**: its bytes (entries plus reservations) never exceed
  the limit; least recently used entries go first; one answer fills a key,
  whatever the number racing; a failed or short fill caches nothing; 0
  disables it; ``--download-cache-size`` reaches it;
* **through the real server** (folder and bucket): a release fetched by N
  students is encoded once (the encoder, ``read_chunk_encoded``, counted by
  wrapping the module attribute); answers are byte-identical with and
  without the cache; ``Content-Length`` equals the body for assignment,
  submission and feedback answers, for sizes 0, 1 and 2 mod 3, pieces of
  several ``DOWNLOAD_CHUNK``, empty files and non-ASCII paths;
* **a blob changed under an answer** (longer or shorter than its size said,
  on the folder store): the connection is closed with fewer bytes than
  announced, never an answer that parses; nothing is cached.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest
from _api import files_of, md5, ok, tree
from _rawhttp import read_until_closed

from ngshare.cli import config_from
from ngshare.encoded_cache import ENTRY_OVERHEAD, EncodedCache
from ngshare.flags import build_parser
from ngshare.handlers import downloads
from ngshare.handlers.downloads import DOWNLOAD_CHUNK, encoded_length

pytestmark = pytest.mark.timeout(120)

ADMIN = 'root'
COURSE, ASSIGNMENT = 'Cache 101', 'Storm'
TEACHER = 'teach'
STUDENTS = tuple(f'student{i}' for i in range(6))
WAIT = 60


# -- the cache alone -------------------------------------------------------------


def filled(cache: EncodedCache, key: str, pieces: list[bytes]) -> bool:
    """Collect ``pieces`` for ``key`` and commit; whether it was cached."""
    fill = cache.reserve(key, sum(map(len, pieces)))
    if fill is None:
        return False
    for piece in pieces:
        fill.add(piece)
    return fill.commit()


def bytes_in(cache: EncodedCache) -> int:
    held, reserved, _ = cache.usage()
    return held + reserved


def test_entries_stay_within_the_limit_least_recently_used_first():
    cost = EncodedCache.cost(1000)
    cache = EncodedCache(4 * cost)
    for name in 'abcd':
        assert filled(cache, name, [name.encode() * 1000])
    assert cache.usage() == (4 * cost, 0, 4)
    # a is used again: b is now the least recently used, and goes first.
    assert cache.get('a') == ((b'a' * 1000,), 1000)
    assert filled(cache, 'e', [b'e' * 1000])
    assert 'b' not in cache
    assert all(name in cache for name in 'acde')
    assert bytes_in(cache) <= cache.limit
    for index in range(50):
        assert filled(cache, f'k{index}', [b'x' * (index * 17 % 1000)])
        assert bytes_in(cache) <= cache.limit
    cache.clear()
    assert cache.usage() == (0, 0, 0)


def test_a_file_over_a_quarter_of_the_limit_is_never_cached():
    cache = EncodedCache(4 * EncodedCache.cost(1000))
    assert cache.cacheable(1000)
    assert not cache.cacheable(1001)
    assert cache.reserve('big', 1001) is None
    assert cache.usage() == (0, 0, 0)


def test_reservations_and_entries_never_exceed_the_limit():
    cost = EncodedCache.cost(1000)
    cache = EncodedCache(4 * cost)
    assert filled(cache, 'old', [b'o' * 1000])
    fills = [cache.reserve(f'r{i}', 1000) for i in range(6)]
    # Four reservations fit, evicting the entry; then no room is left.
    assert [fill is not None for fill in fills] == [True] * 4 + [False] * 2
    assert cache.usage() == (0, 4 * cost, 0)
    assert 'old' not in cache
    for fill in fills[:4]:
        fill.add(b'p' * 600)
        assert bytes_in(cache) <= cache.limit
    # A released reservation makes room for another.
    fills[0].release()
    assert cache.usage() == (0, 3 * cost, 0)
    again = cache.reserve('r9', 1000)
    assert again is not None
    again.release()
    for fill in fills[1:4]:
        fill.add(b'q' * 400)
        assert fill.commit()
    assert cache.usage() == (3 * cost, 0, 3)


def test_one_fill_per_key_even_when_answers_race():
    cache = EncodedCache(1024 * 1024)
    racers = 8
    barrier = threading.Barrier(racers)

    def race(_):
        barrier.wait(WAIT)
        return cache.reserve('same', 100)

    with ThreadPoolExecutor(racers) as pool:
        fills = list(pool.map(race, range(racers)))
    winners = [fill for fill in fills if fill is not None]
    assert len(winners) == 1
    # While it fills, and once it is cached, no other answer collects it.
    assert cache.reserve('same', 100) is None
    winners[0].add(b'z' * 100)
    assert winners[0].commit()
    assert cache.reserve('same', 100) is None
    assert cache.usage() == (EncodedCache.cost(100), 0, 1)


def test_a_failed_or_partial_fill_caches_nothing():
    cache = EncodedCache(1024 * 1024)
    fill = cache.reserve('failed', 300)
    fill.add(b'a' * 100)
    fill.release()  # the read failed
    assert fill.commit() is False
    short = cache.reserve('short', 300)
    short.add(b'b' * 200)
    assert short.commit() is False  # the blob ended early
    long = cache.reserve('long', 300)
    long.add(b'c' * 200)
    long.add(b'c' * 200)  # more than reserved: the fill ends
    assert long.commit() is False
    assert cache.usage() == (0, 0, 0)
    assert all(key not in cache for key in ('failed', 'short', 'long'))
    # Each can be filled again later.
    assert filled(cache, 'failed', [b'a' * 300])


def test_a_cache_of_zero_bytes_is_disabled():
    cache = EncodedCache(0)
    assert not cache.enabled
    assert not cache.cacheable(0)
    assert cache.reserve('key', 0) is None
    assert cache.get('key') is None
    assert cache.usage() == (0, 0, 0)


@pytest.mark.parametrize(
    ('flag', 'limit'),
    [(None, 32 * 1024**2), ('0', 0), ('4M', 4 * 1024**2), ('65536', 65536)],
)
def test_the_flag_sets_the_limit(flag, limit):
    argv = ['--vngshare'] + (['--download-cache-size', flag] if flag else [])
    assert config_from(build_parser().parse_args(argv), {}).download_cache_size == limit


@pytest.mark.parametrize('flag', ['-1', 'lots', ''])
def test_a_bad_cache_size_is_refused(flag, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(['--download-cache-size', flag])
    assert '--download-cache-size' in capsys.readouterr().err


def test_the_entry_overhead_is_charged():
    assert EncodedCache.cost(0) == ENTRY_OVERHEAD
    # Tiny files cannot hold more than the limit in entries.
    cache = EncodedCache(100 * ENTRY_OVERHEAD)
    for index in range(1000):
        filled(cache, f'tiny{index}', [b''])
    assert cache.usage()[2] <= 100


# -- through the real server ---------------------------------------------------


class EncoderCalls:
    """Every call of ``downloads.read_chunk_encoded`` (the module attribute,
    which the download code looks up at each call) and the bytes it
    returned; ``change`` (if set) is called with the stream first."""

    def __init__(self, monkeypatch):
        self.lock = threading.Lock()
        self.calls: list[int] = []
        self.change = None
        real = downloads.read_chunk_encoded

        def counted(stream):
            if self.change is not None:
                self.change(stream)
            piece = real(stream)
            with self.lock:
                self.calls.append(len(piece))
            return piece

        monkeypatch.setattr(downloads, 'read_chunk_encoded', counted)

    def take(self) -> list[int]:
        with self.lock:
            calls, self.calls = self.calls, []
        return calls


def person(name):
    return {'first_name': name, 'last_name': 'S', 'email': ''}


def seed(server, files: dict[str, bytes]) -> None:
    """COURSE taught by TEACHER with STUDENTS, ASSIGNMENT released as ``files``."""
    ok(
        server.post(
            ('course', COURSE), user=ADMIN, data={'instructors': json.dumps([TEACHER])}
        )
    )
    for student in STUDENTS:
        ok(
            server.post(
                ('student', COURSE, student), user=TEACHER, data=person(student)
            )
        )
    ok(
        server.post(
            ('assignment', COURSE, ASSIGNMENT),
            user=TEACHER,
            data={'files': tree(files)},
            timeout=WAIT,
        )
    )


def fetched(server, path, user, **params):
    """The raw answer of a GET: its body checked against its Content-Length."""
    answer = server.get(path, user=user, params=params, timeout=WAIT)
    assert answer.status_code == 200, answer.text[:500]
    assert 'Transfer-Encoding' not in answer.headers, answer.headers
    assert int(answer.headers['Content-Length']) == len(answer.content)
    return answer


def fetch_release(server, student):
    return fetched(server, ('assignment', COURSE, ASSIGNMENT), student).content


def cache_of(server) -> EncodedCache:
    return server.runtime.encoded_cache


# Sizes 0, 1 and 2 mod 3, a piece less one, one, more than one, and several.
TREE = {
    'empty.txt': b'',
    'one.txt': b'1',
    'two.txt': b'22',
    'three.txt': b'333',
    'notebook.ipynb': b'{"cells": []}\n' * 300,
    'données/zoë.txt': 'ünïcode — 日本語 ✓'.encode(),
    '日本/ノート.ipynb': bytes(range(256)) * 41,
    'piece-1.bin': b'a' * (DOWNLOAD_CHUNK - 1),
    'piece.bin': b'b' * DOWNLOAD_CHUNK,
    'piece+1.bin': b'c' * (DOWNLOAD_CHUNK + 1),
    'pieces.bin': bytes(range(251)) * (2 * DOWNLOAD_CHUNK // 251 + 3),
    # The same content twice: one blob, encoded once for both.
    'copy/notebook.ipynb': b'{"cells": []}\n' * 300,
}


def encoded_once(files: dict[str, bytes]) -> int:
    """The bytes the encoder returns reading each distinct content once."""
    return sum(encoded_length(len(content)) for content in set(files.values()))


@pytest.mark.both_storages
def test_a_release_fetched_by_a_class_is_encoded_once(shared_server, monkeypatch):
    seed(shared_server, TREE)
    cache = cache_of(shared_server)
    cache.clear()
    encoder = EncoderCalls(monkeypatch)
    first = fetch_release(shared_server, STUDENTS[0])
    assert files_of(json.loads(first)) == TREE
    assert sum(encoder.take()) == encoded_once(TREE)
    for student in STUDENTS[1:]:
        assert fetch_release(shared_server, student) == first
    assert encoder.take() == []
    # Concurrent fetches of a warm cache: no encoding either.
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda s: fetch_release(shared_server, s), STUDENTS))
    assert answers == [first] * len(STUDENTS)
    assert encoder.take() == []
    held, reserved, entries = cache.usage()
    assert entries == len(set(TREE.values()))
    assert reserved == 0
    assert held == sum(cache.cost(encoded_length(len(c))) for c in set(TREE.values()))
    # Without the cache: the same bytes, every blob encoded for every fetch.
    monkeypatch.setattr(shared_server.runtime, 'encoded_cache', EncodedCache(0))
    for student in STUDENTS[:2]:
        assert fetch_release(shared_server, student) == first
        # (the copy is read again too)
        assert sum(encoder.take()) == sum(
            encoded_length(len(content)) for content in TREE.values()
        )


@pytest.mark.both_storages
def test_a_missing_blob_is_a_500_even_when_cached(shared_server):
    seed(shared_server, {'task.txt': b'will vanish'})
    cache = cache_of(shared_server)
    fetch_release(shared_server, STUDENTS[0])
    (key,) = shared_server.blob_keys()
    assert key in cache
    shared_server.blobs.clear()
    answer = shared_server.get(
        ('assignment', COURSE, ASSIGNMENT), user=STUDENTS[1], timeout=WAIT
    )
    assert answer.status_code == 500
    assert answer.json()['success'] is False


@pytest.mark.both_storages
def test_concurrent_misses_stay_within_a_small_cache(shared_server, monkeypatch):
    limit = 1024 * 1024
    files = {f'part{i}.bin': bytes([i]) * 150_000 for i in range(10)}
    seed(shared_server, files)
    small = EncodedCache(limit)
    monkeypatch.setattr(shared_server.runtime, 'encoded_cache', small)
    seen = []
    real_reserve = small.reserve

    def reserve(key, length):
        fill = real_reserve(key, length)
        seen.append(bytes_in(small))
        return fill

    monkeypatch.setattr(small, 'reserve', reserve)
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda s: fetch_release(shared_server, s), STUDENTS))
    assert all(files_of(json.loads(answer)) == files for answer in answers)
    assert seen and max(seen) <= limit
    held, reserved, entries = small.usage()
    assert reserved == 0
    assert 0 < held <= limit
    assert entries == held // small.cost(encoded_length(150_000))


@pytest.mark.both_storages
def test_every_tree_answer_has_its_content_length(shared_server):
    seed(shared_server, TREE)
    stamp = ok(
        shared_server.post(
            ('submission', COURSE, ASSIGNMENT),
            user=STUDENTS[0],
            data={'files': tree(TREE)},
            timeout=WAIT,
        )
    )['timestamp']
    feedback = {'feedback/task.html': b'<p>Bien jou\xc3\xa9</p>', 'grade.txt': b''}
    ok(
        shared_server.post(
            ('feedback', COURSE, ASSIGNMENT, STUDENTS[0]),
            user=TEACHER,
            data={'timestamp': stamp, 'files': tree(feedback)},
        )
    )
    answers = {
        'assignment': (('assignment', COURSE, ASSIGNMENT), STUDENTS[0], {}),
        'submission': (('submission', COURSE, ASSIGNMENT, STUDENTS[0]), TEACHER, {}),
        'feedback': (
            ('feedback', COURSE, ASSIGNMENT, STUDENTS[0]),
            STUDENTS[0],
            {'timestamp': stamp},
        ),
    }
    expected = {'assignment': TREE, 'submission': TREE, 'feedback': feedback}
    for name, (path, user, params) in answers.items():
        cache_of(shared_server).clear()
        cold = fetched(shared_server, path, user, **params)
        warm = fetched(shared_server, path, user, **params)
        assert warm.content == cold.content, name
        assert files_of(cold.json()) == expected[name], name
        listed = fetched(shared_server, path, user, list_only='true', **params)
        assert [(f['path'], f['checksum']) for f in listed.json()['files']] == [
            (path, md5(content)) for path, content in expected[name].items()
        ]


@pytest.mark.both_storages
def test_an_empty_tree_has_its_content_length(shared_server):
    seed(shared_server, {'task.txt': b'x'})
    stamp = ok(
        shared_server.post(
            ('submission', COURSE, ASSIGNMENT),
            user=STUDENTS[0],
            data={'files': tree({'a.txt': b'a'})},
        )
    )['timestamp']
    # No feedback yet: an answer with no file.
    answer = fetched(
        shared_server,
        ('feedback', COURSE, ASSIGNMENT, STUDENTS[0]),
        STUDENTS[0],
        timestamp=stamp,
    )
    assert answer.json() == {'success': True, 'timestamp': stamp, 'files': []}


def test_head_of_a_tree_is_not_allowed(shared_server):
    seed(shared_server, {'task.txt': b'x'})
    answer = shared_server.request(
        'HEAD', ('assignment', COURSE, ASSIGNMENT), user=STUDENTS[0]
    )
    assert answer.status_code == 405


# -- a blob changed under an answer ----------------------------------------------


def raw_get(server, path, user) -> tuple[bytes, bool]:
    """A GET by hand: every byte the server sent, and whether it closed."""
    target = urllib.parse.urlsplit(server.url(path))
    query = urllib.parse.urlencode({'user': user})
    request = f'GET {target.path}?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
    with socket.create_connection(('127.0.0.1', server.port), timeout=WAIT) as sock:
        sock.sendall(request.encode('latin-1'))
        return read_until_closed(sock, WAIT)


SMALL, LARGE = 100, 2 * DOWNLOAD_CHUNK + 5

CHANGES = {
    # (stored size, before which read of the blob, new size)
    'one piece, longer': (SMALL, 1, SMALL + 50),
    'one piece, shorter': (SMALL, 1, SMALL - 40),
    'pieces, longer': (LARGE, 2, LARGE + DOWNLOAD_CHUNK),
    'pieces, shorter': (LARGE, 2, DOWNLOAD_CHUNK + 10),
    # Of the same base64 length: counted in bytes, not in base64 text.
    'one piece, two bytes longer': (SMALL, 1, SMALL + 2),
    'pieces, one byte longer': (LARGE, 3, LARGE + 1),
    'pieces, one byte shorter': (LARGE, 3, LARGE - 1),
}


@pytest.mark.parametrize('change', sorted(CHANGES))
def test_a_blob_changed_under_an_answer_closes_it(shared_server, monkeypatch, change):
    stored, before, new_size = CHANGES[change]
    content = bytes(range(256)) * (stored // 256 + 1)
    seed(shared_server, {'changed.bin': content[:stored], 'after.txt': b'after'})
    cache = cache_of(shared_server)
    cache.clear()
    changed = next(
        shared_server.storage / key
        for key in shared_server.blob_keys()
        if (shared_server.storage / key).stat().st_size == stored
    )
    reads = []

    def change_it(stream):
        if getattr(stream, 'name', None) != str(changed):
            return
        reads.append(stream)
        if len(reads) == before:
            with open(changed, 'r+b') as blob:
                blob.truncate(new_size)

    encoder = EncoderCalls(monkeypatch)
    encoder.change = change_it
    received, closed = raw_get(
        shared_server, ('assignment', COURSE, ASSIGNMENT), STUDENTS[0]
    )
    assert closed
    head, _, body = received.partition(b'\r\n\r\n')
    if head:
        assert head.startswith(b'HTTP/1.1 200'), head
        length = int(
            next(
                line.split(b':', 1)[1]
                for line in head.split(b'\r\n')
                if line.lower().startswith(b'content-length:')
            )
        )
        assert len(body) < length
    assert not body.endswith(b']}')
    with pytest.raises(ValueError):
        json.loads(body)
    assert changed.relative_to(shared_server.storage).as_posix() not in cache
    assert cache.usage()[1] == 0
    log = shared_server.log_text()
    assert 'Cannot read' in log
    assert 'Traceback' not in log, log
    # The server goes on answering (the blob as it is now).
    encoder.change = None
    answer = fetched(shared_server, ('assignment', COURSE, ASSIGNMENT), STUDENTS[1])
    assert sorted(f['path'] for f in answer.json()['files']) == [
        'after.txt',
        'changed.bin',
    ]
