"""Entry point for gunicorn and the flask CLI (`flask --app wsgi ...`)."""

from connector.app import create_app

app = create_app()
