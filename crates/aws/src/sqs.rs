//! The queues on SQS: a queue per stage named `<prefix><stage>`, each with its dead-letter
//! queue `<prefix><stage>-dlq` (the redrive policy moves a message received too often).
//! In AWS, Lambda's event-source mappings receive and delete; the local runner uses
//! receive, delete and change-visibility as a mapping would.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use tokio::runtime::Handle;
use vellum_core::ports::{DeadLetter, Delivery, ObjectStore, PortError, PortResult, Queue};

use crate::errors::port_error;

/// SQS takes at most 10 messages a call.
const BATCH: usize = 10;

/// SQS takes at most 256 KiB a message, and as much for a whole batch.
const MAX_BYTES: usize = 256 * 1024;

/// Where a body too large for SQS is kept, in the working bucket (its lifecycle expires
/// them after SQS's own longest retention).
const OVERFLOW_PREFIX: &str = "queue-overflow/";

/// What stands in a message for a body kept in S3.
#[derive(serde::Serialize, serde::Deserialize)]
struct Overflow {
    vellum_overflow: String,
}

pub struct SqsQueue {
    client: Client,
    prefix: String,
    rt: Handle,
    urls: Mutex<HashMap<String, String>>,
    overflow: Option<Arc<dyn ObjectStore>>,
}

/// A message's body as it was sent: one kept in S3 because it did not fit SQS is read back
/// from `overflow` (the working bucket); any other body is itself.
pub fn resolve_body(overflow: &dyn ObjectStore, body: &str) -> PortResult<String> {
    let Some(key) = overflow_key(body) else {
        return Ok(body.to_string());
    };
    let mut text = String::new();
    overflow
        .get(&key)?
        .read_to_string(&mut text)
        .map_err(|e| PortError::Unavailable(format!("reading the message body {key}: {e}")))?;
    Ok(text)
}

fn overflow_key(body: &str) -> Option<String> {
    if !body.starts_with("{\"vellum_overflow\"") {
        return None;
    }
    serde_json::from_str::<Overflow>(body).ok().map(|o| o.vellum_overflow).filter(|k| k.starts_with(OVERFLOW_PREFIX))
}

/// Bodies in the batches SQS takes: at most ten, and at most 256 KiB together.
fn batches(bodies: &[String]) -> Vec<&[String]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, body) in bodies.iter().enumerate() {
        if i > start && (i - start == BATCH || bytes + body.len() > MAX_BYTES) {
            out.push(&bodies[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += body.len();
    }
    if start < bodies.len() {
        out.push(&bodies[start..]);
    }
    out
}

/// SQS counts visibility and delays in whole seconds: a part of one is rounded up.
fn whole_seconds(d: Duration) -> i32 {
    d.as_secs_f64().ceil().min(43_200.0) as i32
}

impl SqsQueue {
    pub fn new(client: Client, prefix: &str, rt: Handle) -> Self {
        Self { client, prefix: prefix.to_string(), rt, urls: Mutex::new(HashMap::new()), overflow: None }
    }

    /// Bodies over SQS's limit are kept in `store` (the working bucket) and the message
    /// carries their key; without it such a body is refused.
    pub fn with_overflow(mut self, store: Arc<dyn ObjectStore>) -> Self {
        self.overflow = Some(store);
        self
    }

    /// A body as it can go on SQS: as it is, or put aside in S3 with a pointer in its place.
    fn fitting(&self, queue: &str, body: &str) -> PortResult<String> {
        if body.len() <= MAX_BYTES {
            return Ok(body.to_string());
        }
        let Some(store) = &self.overflow else {
            return Err(PortError::Refused(format!(
                "a message for {queue} of {} bytes is over SQS's 256 KiB and no bucket is set for large bodies",
                body.len()
            )));
        };
        let key = format!("{OVERFLOW_PREFIX}{queue}/{}.json", uuid::Uuid::new_v4());
        store.put(&key, body.as_bytes())?;
        Ok(serde_json::to_string(&Overflow { vellum_overflow: key }).expect("a pointer serializes"))
    }

    /// What every queue name starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn run<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    fn url_of(&self, name: &str) -> PortResult<String> {
        if let Some(url) = self.urls.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
            return Ok(url.clone());
        }
        let out = self
            .run(self.client.get_queue_url().queue_name(name).send())
            .map_err(|e| port_error(&format!("finding the queue {name}"), e))?;
        let url = out.queue_url().unwrap_or_default().to_string();
        self.urls.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), url.clone());
        Ok(url)
    }

    fn url(&self, queue: &str) -> PortResult<String> {
        self.url_of(&format!("{}{queue}", self.prefix))
    }

    fn dead_letter_url(&self, queue: &str) -> PortResult<String> {
        self.url_of(&format!("{}{queue}-dlq", self.prefix))
    }

    /// Messages waiting or in flight in the queue at `url` (SQS's approximate counts).
    fn approximate_count(&self, url: &str, what: &str) -> PortResult<u64> {
        let out = self
            .run(
                self.client
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                    .send(),
            )
            .map_err(|e| port_error(&format!("reading the depth of {what}"), e))?;
        let attrs = out.attributes();
        let count = |name: QueueAttributeName| -> u64 {
            attrs.and_then(|a| a.get(&name)).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        Ok(count(QueueAttributeName::ApproximateNumberOfMessages)
            + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
    }

    /// Creates a stage's queue and its dead-letter queue, moving a message there after
    /// `max_receives` receives (the template does this in AWS; tests and the emulator here).
    pub fn create(&self, queue: &str, max_receives: u32) -> PortResult<()> {
        let dlq_name = format!("{}{queue}-dlq", self.prefix);
        let dlq = self
            .run(self.client.create_queue().queue_name(&dlq_name).send())
            .map_err(|e| port_error(&format!("creating {dlq_name}"), e))?;
        let dlq_url = dlq.queue_url().unwrap_or_default().to_string();
        let attrs = self
            .run(
                self.client
                    .get_queue_attributes()
                    .queue_url(&dlq_url)
                    .attribute_names(QueueAttributeName::QueueArn)
                    .send(),
            )
            .map_err(|e| port_error(&format!("reading {dlq_name}"), e))?;
        let arn = attrs.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned().unwrap_or_default();
        let redrive = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max_receives.to_string()});
        let name = format!("{}{queue}", self.prefix);
        self.run(
            self.client
                .create_queue()
                .queue_name(&name)
                .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
                .send(),
        )
        .map_err(|e| port_error(&format!("creating {name}"), e))?;
        Ok(())
    }

    fn receive_from(&self, url: &str, max: usize, visibility: i32) -> PortResult<Vec<aws_sdk_sqs::types::Message>> {
        let out = self
            .run(
                self.client
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(max.clamp(1, BATCH) as i32)
                    .visibility_timeout(visibility)
                    .wait_time_seconds(0)
                    .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                    .send(),
            )
            .map_err(|e| port_error("receiving messages", e))?;
        Ok(out.messages.unwrap_or_default())
    }
}

fn receive_count(m: &aws_sdk_sqs::types::Message) -> u32 {
    m.attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// A stale or unknown receipt: SQS may refuse it; the contract says it is no error.
fn stale_receipt(e: &PortError) -> bool {
    let text = e.to_string();
    text.contains("ReceiptHandleIsInvalid")
        || text.contains("InvalidParameterValue")
        || text.contains("MessageNotInflight")
}

impl Queue for SqsQueue {
    fn send_batch(&self, queue: &str, bodies: &[String]) -> PortResult<()> {
        let url = self.url(queue)?;
        let bodies: Vec<String> = bodies.iter().map(|b| self.fitting(queue, b)).collect::<PortResult<_>>()?;
        for chunk in batches(&bodies) {
            let entries: Vec<SendMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body).build())
                .collect::<Result<_, _>>()
                .map_err(|e| PortError::Refused(format!("a message for {queue}: {e}")))?;
            let out = self
                .run(self.client.send_message_batch().queue_url(&url).set_entries(Some(entries)).send())
                .map_err(|e| port_error(&format!("sending to {queue}"), e))?;
            if let Some(failed) = out.failed().first() {
                return Err(PortError::Unavailable(format!(
                    "{} of {} messages to {queue} were not sent: {}",
                    out.failed().len(),
                    chunk.len(),
                    failed.message().unwrap_or(failed.code())
                )));
            }
        }
        Ok(())
    }

    fn receive(&self, queue: &str, max: usize, visibility: Duration) -> PortResult<Vec<Delivery>> {
        let url = self.url(queue)?;
        let messages = self.receive_from(&url, max, whole_seconds(visibility))?;
        Ok(messages
            .iter()
            .map(|m| Delivery {
                message_id: m.message_id().unwrap_or_default().to_string(),
                receipt: m.receipt_handle().unwrap_or_default().to_string(),
                body: m.body().unwrap_or_default().to_string(),
                receive_count: receive_count(m),
            })
            .collect())
    }

    fn ack(&self, queue: &str, receipt: &str) -> PortResult<()> {
        let url = self.url(queue)?;
        match self.run(self.client.delete_message().queue_url(&url).receipt_handle(receipt).send()) {
            Ok(_) => Ok(()),
            Err(e) => match port_error(&format!("deleting a message from {queue}"), e) {
                e if stale_receipt(&e) => Ok(()),
                e => Err(e),
            },
        }
    }

    fn nack(&self, queue: &str, receipt: &str, delay: Duration, error: &str) -> PortResult<()> {
        // SQS keeps no reason with a message: it goes to the log, and the monitor reads the
        // transfer's own record.
        tracing::warn!(queue, error, "a message is given back");
        self.extend(queue, receipt, delay)
    }

    fn extend(&self, queue: &str, receipt: &str, visibility: Duration) -> PortResult<()> {
        let url = self.url(queue)?;
        let call = self
            .client
            .change_message_visibility()
            .queue_url(&url)
            .receipt_handle(receipt)
            .visibility_timeout(whole_seconds(visibility));
        match self.run(call.send()) {
            Ok(_) => Ok(()),
            Err(e) => match port_error(&format!("changing a message's visibility on {queue}"), e) {
                e if stale_receipt(&e) => Ok(()),
                e => Err(e),
            },
        }
    }

    fn dead_letters(&self, queue: &str) -> PortResult<Vec<DeadLetter>> {
        // Looked at, not taken: received with no visibility, so they stay where they are.
        let url = self.dead_letter_url(queue)?;
        let mut seen: HashMap<String, DeadLetter> = HashMap::new();
        for _ in 0..100 {
            let messages = self.receive_from(&url, BATCH, 0)?;
            let before = seen.len();
            for m in &messages {
                let id = m.message_id().unwrap_or_default().to_string();
                seen.entry(id.clone()).or_insert_with(|| DeadLetter {
                    message_id: id,
                    queue: queue.to_string(),
                    body: m.body().unwrap_or_default().to_string(),
                    // This look is itself a receive.
                    receive_count: receive_count(m).saturating_sub(1).max(1),
                    last_error: None,
                });
            }
            if messages.is_empty() || seen.len() == before {
                break;
            }
        }
        Ok(seen.into_values().collect())
    }

    fn dead_letter_count(&self, queue: &str) -> PortResult<u64> {
        self.approximate_count(&self.dead_letter_url(queue)?, &format!("{queue}'s dead letters"))
    }

    fn redrive(&self, queue: &str) -> PortResult<usize> {
        // Taken from the dead-letter queue, sent back, then deleted: a crash in between
        // leaves a copy in both, which the idempotent stages absorb.
        let dlq = self.dead_letter_url(queue)?;
        let mut moved = 0;
        let mut empty = 0;
        loop {
            // SQS may answer a short receive empty while messages wait: three empty answers
            // in a row, a second apart, mean the queue is empty.
            let messages = self.receive_from(&dlq, BATCH, 60)?;
            if messages.is_empty() {
                empty += 1;
                if empty == 3 {
                    return Ok(moved);
                }
                std::thread::sleep(std::time::Duration::from_millis(300));
                continue;
            }
            empty = 0;
            let bodies: Vec<String> = messages.iter().map(|m| m.body().unwrap_or_default().to_string()).collect();
            self.send_batch(queue, &bodies)?;
            for m in &messages {
                let call =
                    self.client.delete_message().queue_url(&dlq).receipt_handle(m.receipt_handle().unwrap_or_default());
                self.run(call.send()).map_err(|e| port_error(&format!("deleting a redriven message of {queue}"), e))?;
            }
            moved += messages.len();
        }
    }

    fn depth(&self, queue: &str) -> PortResult<u64> {
        self.approximate_count(&self.url(queue)?, queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_to_ten_messages_and_256_kib() {
        let small: Vec<String> = (0..23).map(|i| i.to_string()).collect();
        assert_eq!(batches(&small).iter().map(|b| b.len()).collect::<Vec<_>>(), [10, 10, 3]);
        let large: Vec<String> = (0..5).map(|_| "x".repeat(100 * 1024)).collect();
        assert_eq!(batches(&large).iter().map(|b| b.len()).collect::<Vec<_>>(), [2, 2, 1]);
        let whole: Vec<String> = vec!["x".repeat(MAX_BYTES), "y".into()];
        assert_eq!(batches(&whole).iter().map(|b| b.len()).collect::<Vec<_>>(), [1, 1]);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn only_a_pointer_into_the_overflow_prefix_is_followed() {
        assert_eq!(
            overflow_key(r#"{"vellum_overflow":"queue-overflow/scan/a.json"}"#).as_deref(),
            Some("queue-overflow/scan/a.json")
        );
        assert_eq!(overflow_key(r#"{"vellum_overflow":"aips/secret"}"#), None);
        assert_eq!(overflow_key(r#"{"transfer_id":"x"}"#), None);
    }
}
