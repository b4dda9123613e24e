"""The SwarmSync HTTP API (FastAPI): `create_app()` in app.py, `serve()` in server.py."""

from swarmsync.api.app import ROUTERS, create_app

__all__ = ["ROUTERS", "create_app"]
