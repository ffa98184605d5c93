"""Generic webhooks: a JSON description of the message, signed with the person's secret.

Receivers verify ``X-Crossgen-Signature`` (see ``signing``) and deduplicate on
``X-Crossgen-Delivery``: a request that timed out is sent again with the same id.
"""

import json
import time
from collections.abc import Callable
from typing import Any

from crossgen_notifications.channels import DeliveryError, Outgoing
from crossgen_notifications.channels.http import HttpPoster
from crossgen_notifications.channels.signing import HEADER, sign

DELIVERY_HEADER = "X-Crossgen-Delivery"


def payload(message: Outgoing) -> dict[str, Any]:
    return {
        "id": str(message.notification_id),
        "template": message.template,
        "source_event_id": message.source_event_id,
        "source_event_type": message.source_event_type,
        "recipient_id": str(message.recipient_id),
        "person_id": message.person_id,
        "subject": message.subject,
        "text": message.text,
        "created_at": message.created_at.isoformat(),
    }


class WebhookChannel:
    def __init__(self, poster: HttpPoster, clock: Callable[[], float] = time.time) -> None:
        self._poster = poster
        self._clock = clock

    async def send(self, message: Outgoing) -> None:
        if not message.webhook_secret:
            raise DeliveryError("the webhook has no signing secret", permanent=True)
        body = json.dumps(payload(message), separators=(",", ":")).encode()
        headers = {
            HEADER: sign(message.webhook_secret, body, int(self._clock())),
            DELIVERY_HEADER: str(message.notification_id),
        }
        await self._poster.post(message.to_address, body, headers)
