"""A Kafka broker that does not answer when a process starts.

``serve`` waits for it: under Kubernetes or compose the broker may come up after the services,
and a service that exited would be started again only after a back-off that grows to minutes. A
one-shot command says what to check and stops.
"""

import logging

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from crossgen_shared.settings import ServiceSettings

log = logging.getLogger(__name__)

LONGEST_PAUSE = 10.0  # seconds between two tries at most: a broker back is found that soon


def not_answering(settings: ServiceSettings, meanwhile: str = "") -> str:
    return (
        f"Kafka at {settings.kafka_bootstrap_servers} does not answer{meanwhile}. Is the broker "
        f"up? {settings.env_name('kafka_bootstrap_servers')} says where it is."
    )


async def until_kafka_answers(settings: ServiceSettings) -> None:
    def pausing(attempt: RetryCallState) -> None:
        log.warning(not_answering(settings, f"; trying again in {attempt.upcoming_sleep:g} s"))

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(KafkaConnectionError),
        wait=wait_exponential(multiplier=0.5, max=LONGEST_PAUSE),
        before_sleep=pausing,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            admin = AIOKafkaAdminClient(**settings.kafka_client_options())
            try:
                await admin.start()
            finally:
                await admin.close()
    if attempt.retry_state.attempt_number > 1:
        log.info("Kafka at %s answers", settings.kafka_bootstrap_servers)
