"""A simple authorization policy: bearer tokens name users, users have allowed verbs.

Not RBAC: a user's rights are a set of verbs (``"*"`` for all), optionally limited to some
resources, the same in every namespace. It is enough to show a client the API server's 401
and 403 answers, with upstream's wording, for "this person may not patch Deployments".
Without a policy (the default) every request is allowed, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .errors import ApiError


@dataclass(frozen=True)
class Grant:
    user: str
    verbs: frozenset[str]
    # Plural resource names ("deployments", "deployments/scale"); empty means all.
    resources: frozenset[str] = frozenset()

    def allows(self, verb: str, resource: str) -> bool:
        if "*" not in self.verbs and verb not in self.verbs:
            return False
        return not self.resources or resource in self.resources


@dataclass
class Policy:
    tokens: dict[str, Grant] = field(default_factory=dict)
    # Who a request without credentials is. kubectl and client-go never send a bearer
    # token over plain HTTP, so on this HTTP-only emulator kubectl is this user, and
    # `kubectl --as=USER` (an impersonation this user must be allowed) acts as USER.
    anonymous: Grant | None = None

    @classmethod
    def from_tokens(
        cls,
        grants: Mapping[str, tuple[str, Iterable[str]] | tuple[str, Iterable[str], Iterable[str]]],
        *,
        anonymous: str | None = None,
    ) -> Policy:
        """``{token: (user, verbs)}`` or ``{token: (user, verbs, resources)}``; requests
        without a token act as the user named ``anonymous`` (401 when None)."""
        policy = cls()
        for token, grant in grants.items():
            user, verbs, *rest = grant
            resources = frozenset(rest[0]) if rest else frozenset()
            policy.tokens[token] = Grant(user, frozenset(verbs), resources)
        if anonymous is not None:
            policy.anonymous = policy.by_user(anonymous)
        return policy

    def by_user(self, user: str) -> Grant | None:
        return next((g for g in self.tokens.values() if g.user == user), None)

    def authenticate(self, authorization: str) -> Grant:
        if not authorization and self.anonymous is not None:
            return self.anonymous
        scheme, _, token = authorization.partition(" ")
        grant = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return grant

    def authorize(
        self,
        grant: Grant,
        *,
        verb: str,
        resource: str,
        group: str,
        namespace: str | None,
        name: str | None,
        impersonate: str | None,
    ) -> str:
        """The effective user name, or raise the API server's 403."""
        if impersonate:
            if not grant.allows("impersonate", "users"):
                raise forbidden(grant.user, "impersonate", "users", "", None, impersonate)
            target = self.by_user(impersonate)
            grant = target or Grant(impersonate, frozenset())
        if not grant.allows(verb, resource):
            raise forbidden(grant.user, verb, resource, group, namespace, name)
        return grant.user


def forbidden(
    user: str, verb: str, resource: str, group: str, namespace: str | None, name: str | None
) -> ApiError:
    plural, _, sub = resource.partition("/")
    qualified = f"{plural}.{group}" if group else plural
    if sub:
        qualified = f"{qualified}/{sub}" if not group else f"{plural}.{group}"
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    target = f' "{name}"' if name else ""
    message = (
        f'{qualified}{target} is forbidden: User "{user}" cannot {verb} resource '
        f'"{resource}" in API group "{group}" {where}'
    )
    details: dict[str, str] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = plural
    return ApiError(403, "Forbidden", message, details=details)
