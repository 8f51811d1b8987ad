"""Grid Hub core: app factory, bus, WebSocket gateway, auth, org tree, HTTP API, CLI."""

__version__ = "0.1.0"
