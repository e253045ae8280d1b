"""Entry point for gunicorn and `flask run`."""

from connector.app import create_app

app = create_app()
