"""The household's web app, served by the bridge service (never by the relay daemon).

``app`` (the pages and their routes), ``auth`` (password, sessions, CSRF, login limit),
``store`` (its copy of the decision log, the labels CSV, the audit trail), ``tls`` (the
certificate) and ``server`` (uvicorn in the bridge's process).  It reaches the door only
through the daemon's socket, whose household requests :mod:`edge.bridge.household` answers.
"""
