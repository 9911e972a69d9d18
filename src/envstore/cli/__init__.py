"""The ``envstore`` command: parsing and printing over the library, nothing else.

``main`` (entry point, the command table, the one error funnel), ``parser`` (built
for the running command only) and ``arguments`` (what each command takes),
``output`` (progress, errors, sizes); one module per command group: ``envs``,
``store``, ``python``, ``interp``, ``portable``, ``frontends``.
"""
