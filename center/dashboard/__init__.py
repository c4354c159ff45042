"""The live dashboard, in one package.

- :mod:`center.dashboard.projection` — :class:`DashboardProjection`: state kept from bus
  events, pushed as coalesced deltas, rebuilt from the database;
- :mod:`center.dashboard.alarms` and :mod:`center.dashboard.books` — the books it keeps
  (alarms; check-ins, staffing, visits, spot-checks);
- :mod:`center.dashboard.view` — what one jurisdiction sees of them;
- :mod:`center.dashboard.source` — where a rebuild reads from. The alarm tables belong to
  ``alerts``, which ``center`` must not import: the composition root (``web.components``)
  hands the source ``alerts.dashboard_source.load`` as its :data:`AlarmLoader`.

The package itself imports nothing, so importing one book does not load the projection.
"""
