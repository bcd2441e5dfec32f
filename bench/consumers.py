"""A consumer that does nothing but record that it ran (ProcessedMessage), for the drain benchmark."""

from o2o.outbox import consumer

TOPIC = "bench.noop"
NAME = "bench.noop"


@consumer(TOPIC, name=NAME)
def noop(message) -> None:
    return None
