"""What listeners see: the composed services (re-exported for type hints)."""

from bot.app import Services

__all__ = ["Services"]
