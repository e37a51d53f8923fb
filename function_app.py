"""Composition root: one Durable Functions app with the review blueprints registered."""
import logging

import azure.durable_functions as df
import azure.functions as func

from activities.check_draft import bp as check_draft
from activities.notify_reviewer import bp as notify_reviewer
from activities.publish_content import bp as publish_content
from activities.write_draft import bp as write_draft
from channels.teams_contacts import bp as teams_contacts
from entities.review_card import bp as review_card
from entities.review_stats import bp as review_stats
from entities.seat_messages import bp as seat_messages
from orchestrations.hitl_orchestration import bp as hitl_orchestration
from orchestrations.writer_agent import bp as writer_agent
from routes.agent_routes import bp as agent_routes
from routes.analytics_routes import bp as analytics_routes
from routes.hitl_routes import bp as hitl_routes
from routes.owner_routes import bp as owner_routes
from routes.review_routes import bp as review_routes
from routes.slack_routes import bp as slack_routes
from routes.teams_routes import bp as teams_routes
from shared_code.settings import configuration_report, load_settings

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (hitl_routes, review_routes, owner_routes, analytics_routes, agent_routes, teams_routes, slack_routes,
                  hitl_orchestration, writer_agent, write_draft, check_draft, notify_reviewer, publish_content,
                  review_card, review_stats, teams_contacts, seat_messages):
    app.register_functions(blueprint)

for level, line in configuration_report(load_settings()):
    logging.getLogger("hitl").log(level, line)
