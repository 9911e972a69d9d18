"""Plugins that let other tools make their environments with envstore.

``envstore.plugins.tox`` (a tox 4 runner and package env, ``runner = envstore``)
and ``envstore.plugins.hatch`` (a Hatch environment type, ``type = "envstore"``).
They are loaded only by those tools, through the entry points in pyproject.toml,
and only change what a tool does where its configuration names them.
"""
