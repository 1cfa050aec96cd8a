"""Persistence for rollback-bot: typed models, repositories, the unit of work and migrations.

Everything outside this package talks to the database through ``rollback_bot.storage.db`` (engines,
migrations, units of work) and the domain-shaped repositories hung off a unit of work, so the
rest of the bot never builds SQL or manages transactions itself.
"""
