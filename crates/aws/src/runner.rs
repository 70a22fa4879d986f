//! The local runner against an AWS emulator: it polls each stage's queue as Lambda's
//! event-source mapping would, hands the batch to the same handler a function uses, deletes
//! what succeeded and gives back what must be retried.

use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use vellum_core::model::Stage;
use vellum_core::ports::Queue;

use crate::app::AwsApp;
use crate::lambda::handle_sqs;

/// How long a received message stays hidden while its batch is handled, unless told.
pub const VISIBILITY: Duration = Duration::from_secs(120);

/// One pass over every queue, each message hidden for `visibility` while it is handled;
/// returns how many messages were handled.
pub fn poll_once(app: &AwsApp, budget: Duration, visibility: Duration, retry_after: Duration) -> Result<usize, String> {
    let mut handled = 0;
    for stage in Stage::ALL {
        let queue = stage.name();
        let deliveries = app.queue.receive(queue, 10, visibility).map_err(|e| e.to_string())?;
        if deliveries.is_empty() {
            continue;
        }
        let mut event = SqsEvent::default();
        for d in &deliveries {
            let mut m = SqsMessage::default();
            m.message_id = Some(d.message_id.clone());
            m.receipt_handle = Some(d.receipt.clone());
            m.body = Some(d.body.clone());
            event.records.push(m);
        }
        let response = handle_sqs(&app.pipeline, stage, &event, budget);
        for d in &deliveries {
            let failed = response.batch_item_failures.iter().any(|f| f.item_identifier == d.message_id);
            let settled = if failed {
                app.queue.nack(queue, &d.receipt, retry_after, "the handler asked for a retry")
            } else {
                app.queue.ack(queue, &d.receipt)
            };
            settled.map_err(|e| e.to_string())?;
        }
        handled += deliveries.len();
    }
    Ok(handled)
}

/// Polls until `done` says so, or nothing arrives for `idle`.
pub fn drive(app: &AwsApp, budget: Duration, idle: Duration, done: impl Fn() -> bool) -> Result<(), String> {
    let mut quiet_since = Instant::now();
    loop {
        if done() {
            return Ok(());
        }
        if poll_once(app, budget, VISIBILITY, Duration::from_secs(1))? > 0 {
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() > idle {
            return Ok(());
        } else {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
