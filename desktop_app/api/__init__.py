"""The local HTTP API: OpenAI Images and Automatic1111 dialects and a WebSocket of
the queue's events, served by aiohttp on the engine's own loop (docs/api.md).

A face like ``ui`` and ``cli``: it drives the ``Engine`` and never imports a
provider. ``ApiServer`` (``server.py``) is what the window and ``imagedesk serve``
start."""
