"""Chat messages through incoming webhooks: Slack, and Microsoft Teams (Adaptive Card).

A chat URL is itself the credential (whoever holds it can post), so these are not signed.
"""

import json
from typing import Any

from crossgen_notifications.channels import DeliveryError, Outgoing
from crossgen_notifications.channels.http import HttpPoster


def slack_payload(message: Outgoing) -> dict[str, Any]:
    """Block Kit with a plain-text fallback for notifications and old clients."""
    return {
        "text": f"{_slack_escape(message.subject)}\n{_slack_escape(message.text)}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": message.subject[:150]}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _slack_escape(message.text)[:3000]},
            },
        ],
    }


def teams_payload(message: Outgoing) -> dict[str, Any]:
    """An Adaptive Card message, which Teams incoming webhooks and Workflows both accept."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": message.subject,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {"type": "TextBlock", "text": message.text, "wrap": True},
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


PAYLOADS = {"slack": slack_payload, "teams": teams_payload}


class ChatChannel:
    def __init__(self, poster: HttpPoster) -> None:
        self._poster = poster

    async def send(self, message: Outgoing) -> None:
        build = PAYLOADS.get(message.chat_kind or "")
        if build is None:
            raise DeliveryError(f"unknown chat kind {message.chat_kind!r}", permanent=True)
        await self._poster.post(message.to_address, json.dumps(build(message)).encode(), {})


def _slack_escape(text: str) -> str:
    """Slack reads &, < and > as markup: a name like "<!channel>" must not ping a whole channel."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
