# ngshare as a JupyterHub-managed service: the part of jupyterhub_config.py
# an administrator adds (or merges into an existing configuration).
#
# Works with JupyterHub 2 and later (tested with JupyterHub 6). Install
# ngshare first, in the Python environment the Hub runs in (a version only
# this ngshare satisfies: a plain "ngshare" is the older 0.6.0 on the package
# index; before a release, install from a checkout or a wheel, see
# docs/install.md):
#
#     /opt/jupyterhub/bin/python -m pip install "ngshare>=1.0.0.dev0"
#
# Then restart JupyterHub and open Control Panel -> Services -> ngshare: the
# ngshare welcome page means it works. See docs/jupyterhub.md for the whole
# story.

import sys

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

# The service. JupyterHub starts the command at start-up (if it fails there,
# the Hub exits: docs/jupyterhub.md), restarts it if it exits later, stops it
# when the Hub stops, and proxies /services/ngshare/ to `url`.
c.JupyterHub.services.append(
    {
        'name': 'ngshare',
        # Where ngshare listens: the Hub passes this URL to ngshare as
        # $JUPYTERHUB_SERVICE_URL and ngshare listens there: at 127.0.0.1
        # only, so just this machine reaches it (a DNS name or 0.0.0.0 here
        # would mean every interface: then firewall the port). Users reach it
        # through the proxy (or, for nbgrader on the same machine, at this
        # URL, as in nbgrader_config.py).
        'url': 'http://127.0.0.1:10101',
        # The users given to --admins may do everything an instructor of any
        # course may do (create courses, add instructors). Other flags:
        # `python -m ngshare --help` (e.g. --database, default
        # sqlite:////srv/ngshare/ngshare.db, and --storage, default
        # /srv/ngshare/files/: the Hub's user needs write access there).
        # sys.executable is the Hub's own interpreter, where ngshare is
        # installed: a bare 'python3' is looked up on the Hub's PATH (under
        # systemd the system's Python, without ngshare), and a service that
        # exits at start-up makes the whole Hub exit.
        'command': [sys.executable, '-m', 'ngshare', '--admins', 'admin,admin2'],
        # Skip the Hub's "Authorize access" page when a user opens the
        # ngshare pages in a browser (the welcome page, the admins' database
        # dump): ngshare is part of this installation, and only learns who
        # the user is (it asks for no other scope).
        'oauth_no_confirm': True,
    }
)

# Who may use ngshare in a browser. Since JupyterHub 2 a user can open a
# service page (and see it under Control Panel -> Services) only with the
# scope access:services!service=ngshare, which the default `user` role
# ('self') does not include; without it the browser login to ngshare ends
# with a 403 from the Hub. Redefining the `user` role gives it to every
# user; keep 'self' (the default) in the list. If your configuration already
# redefines the `user` role, add the scope there instead. (With JupyterHub 6
# or later, c.JupyterHub.extra_user_scopes = ['access:services!service=ngshare']
# does the same without redefining the role.)
#
# API calls (nbgrader's exchange plugin, ngshare.exchange) do not need this:
# they present the token of the user's single-user server (scopes
# users:activity!user and access:servers!server), which ngshare accepts as
# the user's own; it refuses tokens meant for other services or other users'
# servers, and decides with its own course roles (docs/security.md). With ngshare's
# --strict-token-scopes, the servers' tokens need this scope as well:
#
#     c.Spawner.server_token_scopes = [
#         'users:activity!user',
#         'access:servers!server',
#         'access:services!service=ngshare',
#     ]
#
# The service itself needs no role: it only identifies users (GET
# /hub/api/user with the user's token) and completes the browser login with
# its own OAuth client, which JupyterHub creates for it.
c.JupyterHub.load_roles.append(
    {
        'name': 'user',
        'description': 'Standard user privileges, and opening the ngshare pages',
        'scopes': ['self', 'access:services!service=ngshare'],
    }
)
