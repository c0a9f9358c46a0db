"""The workflow: one table of status × action → status, and who may take each action.

The service enforces it, the 409 errors quote it, and the OpenAPI descriptions are built from it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from app.cases.models import CaseStatus as S
from app.core.errors import Conflict


class Action(enum.StrEnum):
    assign = "assign"
    accept = "accept"
    interim_answer = "interim-answer"
    close = "close"
    return_ = "return"
    reject = "reject"
    reopen = "reopen"


@dataclass(frozen=True)
class Transition:
    sources: frozenset[S]
    target: S
    scope: str  # the scope the actor needs (operators triage, agencies answer)
    summary: str


TRANSITIONS: dict[Action, Transition] = {
    Action.assign: Transition(
        frozenset({S.new, S.returned, S.assigned, S.in_progress}),
        S.assigned,
        "cases:triage",
        "Assign (or reassign) the case to an agency",
    ),
    Action.accept: Transition(
        frozenset({S.assigned}), S.in_progress, "cases:answer", "The agency takes the case on"
    ),
    Action.interim_answer: Transition(
        frozenset({S.in_progress}),
        S.in_progress,
        "cases:answer",
        "An interim answer with a planned date; moves the final deadline",
    ),
    Action.close: Transition(
        frozenset({S.assigned, S.in_progress}),
        S.closed,
        "cases:answer",
        "The final answer, its resolution and the responsible official",
    ),
    Action.return_: Transition(
        frozenset({S.assigned, S.in_progress}),
        S.returned,
        "cases:answer",
        "Send the case back to the regional centre, with a reason — never a silent close",
    ),
    Action.reject: Transition(
        frozenset({S.new, S.returned}),
        S.rejected,
        "cases:triage",
        "Reject spam, duplicates, non-complaints, cases outside the region",
    ),
    Action.reopen: Transition(
        frozenset({S.closed, S.rejected}),
        S.assigned,
        "cases:triage",
        "Reopen a closed or rejected case and send it to an agency again",
    ),
}


def allowed_actions(status: str, scopes: frozenset[str] | None = None) -> list[str]:
    """The actions a case in this status allows (for a caller with these scopes, if given)."""
    return [
        action.value
        for action, t in TRANSITIONS.items()
        if status in t.sources and (scopes is None or t.scope in scopes)
    ]


def target_status(action: Action, status: str) -> S:
    transition = TRANSITIONS[action]
    if status not in transition.sources:
        allowed = allowed_actions(status)
        raise Conflict(
            f"Cannot {action.value} a case that is {status}; "
            f"a {status} case allows: {', '.join(allowed) or 'no actions'}",
            code="invalid-transition",
            status_now=status,
            allowed_actions=allowed,
        )
    return transition.target


def describe(action: Action) -> str:
    t = TRANSITIONS[action]
    sources = " | ".join(sorted(t.sources))
    return f"{t.summary}. Allowed from: {sources} → {t.target}. Needs scope `{t.scope}`."
