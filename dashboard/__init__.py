"""The Dash face of the dashboard: the factory at the top, and one room per role: api/, figures/, page/.

Importing a submodule has no side effects: ``from dashboard import figures`` works in a
notebook without a server, and ``dashboard.factory.create_app()`` builds a whole app.
"""
