"""The files of the scenario: notebooks and feedback, unique per owner and
round, generated fast.

Notebook text is random bytes mapped onto a small alphabet by
``bytes.translate`` (C speed): the former ``rng.choice`` per character cost
the client seconds of CPU per round, beside the server it measures.
"""

from __future__ import annotations

import json
import random

ALPHABET = b'abcdefghij \n'
TO_ALPHABET = bytes(ALPHABET[i % len(ALPHABET)] for i in range(256))
CELL = 1000


def notebook(owner: str, size: int, round_: int = 0) -> bytes:
    """A notebook-like JSON file of about ``size`` bytes, unique per owner
    and round."""
    rng = random.Random(f'{owner}/{round_}')
    cells = max(1, -(-size // (CELL + 60)))
    text = rng.randbytes(cells * CELL).translate(TO_ALPHABET).decode('ascii')
    document = {
        'cells': [
            {'cell_type': 'code', 'source': text[i : i + CELL], 'metadata': {}}
            for i in range(0, len(text), CELL)
        ],
        'metadata': {'owner': owner, 'round': round_},
    }
    return json.dumps(document).encode()


def feedback_html(student: str) -> bytes:
    return (f'<html><body>Feedback for {student}</body></html>' * 500).encode()
