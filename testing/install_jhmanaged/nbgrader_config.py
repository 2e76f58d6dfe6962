# nbgrader's global configuration for ngshare, for every user:
# install it as /etc/jupyter/nbgrader_config.py where the single-user servers
# run, with ngshare's exchange plugin installed there (it brings nbgrader 0.9):
#
#     python -m pip install "ngshare[exchange]>=1.0.0.dev0"
#
# (before a release, from a checkout or a wheel: see docs/install.md).

from ngshare.exchange import configureExchange

c = get_config()  # noqa: F821 (provided by Jupyter when it loads this file)

# The ngshare URL, as a single-user server reaches it. Here the service's
# `url` from jupyterhub_config.py plus its prefix /services/ngshare (the
# servers run on the Hub's machine). Servers elsewhere use the Hub's proxy
# instead, e.g. 'https://hub.example.org/services/ngshare'.
configureExchange(c, 'http://127.0.0.1:10101/services/ngshare')

# Let students use every course they are enrolled in without configuring a
# course id (see "Notes for Instructors" in the ngshare documentation).
c.CourseDirectory.course_id = '*'
