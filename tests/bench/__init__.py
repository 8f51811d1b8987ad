"""Benchmarks for Grid Hub (not run in CI).

``python -m tests.bench.fanout`` measures WebSocket fan-out of the hub against two peers
written here: a bare aiohttp loop (:mod:`tests.bench.peer_bare`) and python-socketio
(:mod:`tests.bench.peer_socketio`).
"""
