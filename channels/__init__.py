"""Two-way reviewer channels: Microsoft Teams (Adaptive Cards through the Microsoft 365
Agents SDK), Slack (Block Kit buttons through slack_sdk) and e-mail (SMTP or Azure
Communication Services). Each module only translates: a notice into the channel's
message, and a click into a decision for ``routes.decisions``; the rules stay there."""
