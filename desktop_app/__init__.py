"""ImageDesk: prompts into images, local GPU first, cloud fallback."""

__version__ = "0.1.0"
