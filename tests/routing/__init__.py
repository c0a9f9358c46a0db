"""Routing tests, and the routing-rule factory they share."""

from __future__ import annotations

import itertools

from app.routing.models import RoutingRule

_seq = itertools.count(1)


def routing_rule(**kw) -> RoutingRule:
    """A rule with defaults: no conditions, priority `normal`, stop. Pass `id` for pure engine
    tests (no database)."""
    n = next(_seq)
    return RoutingRule(**{"name": f"Правило {n}", "position": n, "priority": "normal", **kw})
