"""Entry point: ``python app.py`` for development, ``gunicorn app:server`` in production."""

from dashboard.factory import create_app
from data.settings import Settings

settings = Settings.from_env()
app = create_app(settings)
server = app.server

if __name__ == "__main__":
    app.run(host=settings.host, port=settings.port, debug=False)
