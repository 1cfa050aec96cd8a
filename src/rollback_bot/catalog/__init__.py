"""The service catalog: which Deployments the bot may roll back, and how.

``model`` holds the validated shape, ``loader`` reads and checks a catalog file as a
whole, ``matchers`` compiles the label matchers of ``match``, ``triggers`` the trigger
rules, and ``operators`` the comparison operators both rules and the health gate use.
The catalog depends on nothing else of the bot, so every package may read it.
"""

from rollback_bot.catalog.loader import CatalogError, load_catalog, parse_catalog
from rollback_bot.catalog.model import (
    Audience,
    BlueGreen,
    Catalog,
    Flag,
    Gradual,
    Health,
    HelmRelease,
    Impersonation,
    Policy,
    PrometheusCheck,
    Service,
)

__all__ = [
    "Audience",
    "BlueGreen",
    "Catalog",
    "CatalogError",
    "Flag",
    "Gradual",
    "Health",
    "HelmRelease",
    "Impersonation",
    "Policy",
    "PrometheusCheck",
    "Service",
    "load_catalog",
    "parse_catalog",
]
