"""Who is calling: the authenticated caller of a request, and nothing else.

A leaf module (it imports nothing of ngshare) so that :mod:`.auth`, which
decides who is calling, need not import :mod:`.permissions` and through it
the ORM; everything that acts on someone's behalf imports :class:`Actor`
from here.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Actor:
    """The authenticated caller of a request."""

    name: str
    is_admin: bool = False
