"""Which Hub tokens ngshare accepts: a pure rule on the Hub's answer.

JupyterHub answers ``GET /hub/api/user`` with the model of the token's
owner and, in ``scopes``, the token's own scopes, expanded (``self`` becomes
``users:activity!user=alice``, ``access:servers!user=alice``, ...). The
Hub scopes tokens per OAuth client precisely so that a token handed to one
client cannot be replayed against another; ngshare therefore accepts a token
only when it was meant for ngshare, or is its user's own:

* ``access:services`` or ``access:services!service=<our name>``: a token
  issued to ngshare (its browser login), or one carrying the user's full
  permissions with the ``access:services!service=ngshare`` scope the
  example configuration grants (the Token page);
* unless ``strict``, the scopes of the user's own single-user server token
  (``$JUPYTERHUB_API_TOKEN`` on JupyterHub 4, 5 and 6: the ``server`` role,
  ``users:activity!user`` and ``access:servers!server``), or of a token with
  the user's full ``self`` permissions: ``users:activity[!user=<owner>]``,
  ``access:servers!server=<owner>/...``, ``access:servers!user=<owner>``,
  always naming the token's *own* user. An OAuth token issued to alice's
  server for bob carries ``access:servers!server=alice/`` and belongs to
  bob: refused, so a student's server cannot replay its visitors' tokens.

Everything else (a token of another service, a token with only the identify
scopes) is refused. Hub *services* are not users: their tokens are refused
unless the service is listed in ``--trusted-services``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

# Longest token looked up at the Hub. JupyterHub's own tokens are 32 to 64
# characters; anything much longer is refused without costing a lookup.
MAX_TOKEN_LENGTH = 256


def plausible_token(token: str) -> bool:
    """Whether ``token`` could be a Hub token at all (else: no lookup).

    Non-empty, at most :data:`MAX_TOKEN_LENGTH` characters, printable ASCII
    without spaces.
    """
    return 0 < len(token) <= MAX_TOKEN_LENGTH and all(
        '!' <= char <= '~' for char in token
    )


def meant_for_service(scopes: Iterable[str], service_name: str) -> bool:
    """Whether the scopes grant access to this service (strict rule)."""
    wanted = {'access:services', f'access:services!service={service_name}'}
    return not wanted.isdisjoint(scopes)


def users_own_token(scopes: Iterable[str], owner: str) -> bool:
    """Whether the scopes are those of ``owner``'s own server or session."""
    own = {
        'users:activity',
        f'users:activity!user={owner}',
        f'access:servers!user={owner}',
    }
    server_prefix = f'access:servers!server={owner}/'
    return any(scope in own or scope.startswith(server_prefix) for scope in scopes)


def accepted_name(
    model: dict | None,
    *,
    service_name: str,
    strict: bool,
    trusted_services: Collection[str],
) -> str | None:
    """The name ngshare acts under for the Hub's model, None to refuse."""
    if not isinstance(model, dict):
        return None
    name = model.get('name')
    if not isinstance(name, str) or not name:
        return None
    kind = model.get('kind', 'user')
    if kind == 'service':
        return name if name in trusted_services else None
    if kind != 'user':
        return None
    scopes = model.get('scopes')
    if not isinstance(scopes, list):
        return None
    scopes = [scope for scope in scopes if isinstance(scope, str)]
    if meant_for_service(scopes, service_name):
        return name
    if not strict and users_own_token(scopes, name):
        return name
    return None
