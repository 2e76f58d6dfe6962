"""The HTTP server: which peers may say who the client is, and timeouts.

Tornado's ``xheaders`` option believes ``X-Forwarded-For``, ``X-Real-Ip``
and ``X-Forwarded-Proto`` from every peer, so any client connecting
directly to the service could put another address in the access log (and
claim ``https``). ngshare believes them only from the peers given to
``--trusted-proxies`` (addresses or networks; by default loopback, where
JupyterHub's configurable-http-proxy runs beside a managed service), and
otherwise logs the address the connection really comes from.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Union

from tornado.httpserver import HTTPServer

__all__ = ['ProxyAwareHTTPServer', 'parse_networks']

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``--trusted-proxies`` entries as networks (an address is a /32 or /128).

    Raises ValueError naming the first entry that is neither.
    """
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f'not an IP address or network: {entry!r}') from None
    return tuple(networks)


def is_trusted(address: str | None, networks: tuple[Network, ...]) -> bool:
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


class ProxyAwareHTTPServer(HTTPServer):
    """An ``HTTPServer`` applying ``xheaders`` only to requests of trusted peers.

    ``start_request`` runs on the event loop for each request, before its
    headers are read, with the connection's peer address as
    ``context.remote_ip`` (Tornado restores it after every request), so the
    decision is per request and per peer.
    """

    def initialize(self, *args, trusted_proxies: Iterable[str] = (), **kwargs):
        self.trusted_networks = parse_networks(trusted_proxies)
        kwargs['xheaders'] = False
        super().initialize(*args, **kwargs)

    def start_request(self, server_conn, request_conn):
        context = getattr(request_conn, 'context', None)
        self.xheaders = is_trusted(
            getattr(context, 'remote_ip', None), self.trusted_networks
        )
        return super().start_request(server_conn, request_conn)
