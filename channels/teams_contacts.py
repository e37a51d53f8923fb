"""Where each person's Teams chat with the bot is, kept as a durable entity per person
(key: the person's sign-in name, without case): written when the person installs the
app or writes to the bot, read when a review starts or a seat is handed to them."""
from __future__ import annotations

from typing import Optional

import azure.durable_functions as df

from shared_code.models import durable_payload

from .teams import TeamsContact

bp = df.Blueprint()

ENTITY = "teams_contact"


def entity_id(person_key: str) -> df.EntityId:
    return df.EntityId(ENTITY, person_key.casefold())


@bp.entity_trigger(context_name="context", entity_name=ENTITY)
def teams_contact(context: df.DurableEntityContext):
    """Operations: ``set`` (a contact, as TeamsContact.to_json writes it) and ``get``."""
    if context.operation_name == "set":
        contact = TeamsContact.from_json(context.get_input())
        if contact is not None:
            context.set_state(contact.to_json())
        return
    context.set_result(context.get_state(lambda: None))


async def read_contacts(client: df.DurableOrchestrationClient, names: list[str]) -> dict:
    """{person key: contact JSON} for the people who have one."""
    found = {}
    for name in dict.fromkeys(n.casefold() for n in names):
        contact = await read_contact(client, name)
        if contact is not None:
            found[name] = contact.to_json()
    return found


async def read_contact(client: df.DurableOrchestrationClient, name: str) -> Optional[TeamsContact]:
    state = await client.read_entity_state(entity_id(name))
    return TeamsContact.from_json(durable_payload(state.entity_state)) if state.entity_exists else None
