"""What listeners see: the composed services (re-exported for type hints)."""

from rollback_bot.app import Services

__all__ = ["Services"]
