"""The WebSocket gateway: Centrifugo client protocol over aiohttp, channel fan-out."""
