//! The queue's port: SQS's promises and no more.

use std::time::Duration;

use super::PortResult;

/// A message as a consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub message_id: String,
    /// Names this receipt of the message; acks and extensions use it.
    pub receipt: String,
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// A message that was received too often and moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: String,
    pub queue: String,
    pub body: String,
    pub receive_count: u32,
    pub last_error: Option<String>,
}

/// Queues, named by stage, with no more than SQS promises: delivery at least once and in
/// any order; visibility and delays in whole seconds (an adapter whose service takes only
/// seconds rounds up); a depth that is approximate and may lag; a stale receipt that may
/// or may not still delete its message. At most 10 messages a receive or a send batch.
pub trait Queue: Send + Sync {
    fn send(&self, queue: &str, body: &str) -> PortResult<()> {
        self.send_batch(queue, &[body.to_string()])
    }
    fn send_batch(&self, queue: &str, bodies: &[String]) -> PortResult<()>;
    /// Up to `max` messages, each hidden from other consumers for `visibility`. A message
    /// already received `max_receives` times goes to the dead-letter queue instead.
    fn receive(&self, queue: &str, max: usize, visibility: Duration) -> PortResult<Vec<Delivery>>;
    /// Done with the message: it is deleted. A stale receipt is ignored.
    fn ack(&self, queue: &str, receipt: &str) -> PortResult<()>;
    /// Give the message back, visible again after `delay`; `error` is kept for the
    /// dead-letter record.
    fn nack(&self, queue: &str, receipt: &str, delay: Duration, error: &str) -> PortResult<()>;
    /// Keep the message hidden for `visibility` more, while work goes on.
    fn extend(&self, queue: &str, receipt: &str, visibility: Duration) -> PortResult<()>;
    fn dead_letters(&self, queue: &str) -> PortResult<Vec<DeadLetter>>;
    /// How many messages of `queue` are dead-lettered (approximate on SQS), without
    /// looking at them: a status page asks this often.
    fn dead_letter_count(&self, queue: &str) -> PortResult<u64>;
    /// Sends every dead-lettered message of `queue` back to it, to be received afresh;
    /// returns how many.
    fn redrive(&self, queue: &str) -> PortResult<usize>;
    /// Messages waiting or in flight.
    fn depth(&self, queue: &str) -> PortResult<u64>;
}
