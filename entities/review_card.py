"""The durable entity behind the reviewer inbox: one card per review, saying what an inbox
row shows while the review waits for a decision (topic, round, stage, deadline, the open
seats and how they were told), and a hidden card once it does not.

The review orchestration signals its card whenever what it shows changes; the inbox reads
the cards that changed since it last looked (the entity query's lastOperationTimeFrom),
so no request reads every review. A card is hidden, not deleted, so that the change reaches
every reader; hidden cards of old reviews fall out of that window.
"""
from __future__ import annotations

import azure.durable_functions as df

bp = df.Blueprint()

REVIEW_CARD = "review_card"
SHOW, HIDE = "show", "hide"


@bp.entity_trigger(context_name="context")
def review_card(context: df.DurableEntityContext) -> None:
    if context.operation_name == SHOW:
        context.set_state(context.get_input())
    elif context.operation_name == HIDE:
        context.set_state({"hidden": True})


def card_entity(instance_id: str) -> df.EntityId:
    return df.EntityId(REVIEW_CARD, instance_id)
