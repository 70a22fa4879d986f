//! The long-job worker: a stage's work too long for a Lambda (a long video's conversion) is
//! handed to the stage's long-job queue (`normalize-long`), and this loop, run as a Fargate
//! task from the same image as the stage's function, takes it from there: the same message,
//! the same stage, no time limit but the queue's visibility. A message that fails is given
//! back after a backoff and, received too often, goes to the queue's dead-letter queue, which
//! the monitor sweeps as it sweeps every stage's.

use std::time::Duration;

use vellum_core::model::Stage;
use vellum_core::pipeline::{retry_backoff, Outcome};
use vellum_core::ports::{PortError, Queue};
use vellum_core::StageContext;

use crate::app::AwsApp;

/// How long a long job's message is hidden while it runs: SQS's most, 12 hours (the
/// template gives the long-job queue the same visibility timeout).
pub const VISIBILITY: Duration = Duration::from_secs(12 * 3600);

/// What a job may take before it is abandoned: the visibility less a margin, so no second
/// worker takes the message while the first still writes.
const BUDGET: Duration = Duration::from_secs(11 * 3600);

/// Takes one message from `stage`'s long-job queue, if one waits, and handles it: acked when
/// done, given back after a backoff when the stage asks for a retry. Ok(None) when none
/// waited.
pub fn take_one(app: &AwsApp, stage: Stage) -> Result<Option<Outcome>, PortError> {
    let Some(queue) = stage.long_jobs_queue() else {
        return Err(PortError::Unavailable(format!("the {stage} stage has no long-job queue")));
    };
    let Some(delivery) = app.queue.receive(queue, 1, VISIBILITY)?.into_iter().next() else {
        return Ok(None);
    };
    let body = crate::sqs::resolve_body(app.pipeline.working.as_ref(), &delivery.body)?;
    let outcome = app.pipeline.handle_queue(queue, &body, &StageContext::with_budget(BUDGET));
    if outcome.acknowledges() {
        app.queue.ack(queue, &delivery.receipt)?;
    } else {
        let wait = retry_backoff(crate::lambda::FIRST_RETRY, delivery.receive_count);
        app.queue.nack(queue, &delivery.receipt, wait, &format!("{outcome:?}"))?;
    }
    Ok(Some(outcome))
}

/// Takes long jobs until the task is stopped (the service scales to none when the queue is
/// empty), waiting `idle` between looks at an empty queue.
pub fn serve(app: &AwsApp, stage: Stage, idle: Duration) -> ! {
    loop {
        match take_one(app, stage) {
            Ok(Some(outcome)) => tracing::info!(%stage, ?outcome, "a long job handled"),
            Ok(None) => std::thread::sleep(idle),
            Err(e) => {
                tracing::warn!(%stage, error = %e, "the long-job queue could not be read; trying again");
                std::thread::sleep(idle);
            }
        }
    }
}
