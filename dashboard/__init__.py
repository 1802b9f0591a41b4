"""The Dash face of the dashboard: factory, settings, layout, callbacks, figures and read API.

Importing a submodule has no side effects: ``from dashboard import figures`` works in a
notebook without a server, and ``dashboard.factory.create_app()`` builds a whole app.
"""
