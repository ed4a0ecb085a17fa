//! Broker-side state of the buses that keep messages: durable queues with
//! acknowledgements (RabbitMQ-like). The log's partitions and consumer
//! groups live with the event loop for now; the ephemeral bus keeps nothing.

pub(crate) mod queue;
