//! The local runner plays the part of Lambda's event-source mappings: workers per stage
//! receive messages, hand them to the core, keep their lease alive while the core works,
//! and acknowledge or give back each message by its outcome. A monitor thread turns dead
//! letters into failed transfers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::sync::{mpsc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tracing::{debug, warn};
use vellum_core::model::Stage;
use vellum_core::operations::monitor::fail_dead_lettered;
use vellum_core::ports::{Delivery, Queue};
use vellum_core::{Outcome, Pipeline, StageContext};

use crate::sqlite_queue::SqliteQueue;

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Messages in flight per stage at once.
    pub workers_per_stage: usize,
    /// How long a received message stays hidden; the lease is renewed while work goes on.
    pub visibility: Duration,
    /// The time one invocation has before it must checkpoint (Lambda's deadline).
    pub budget: Duration,
    /// How often idle workers look for messages sent by other processes.
    pub idle_poll: Duration,
    /// The first retry delay after a transient error; doubled per receive.
    pub retry_delay: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            workers_per_stage: 2,
            visibility: Duration::from_secs(30),
            budget: Duration::from_secs(300),
            idle_poll: Duration::from_millis(250),
            retry_delay: Duration::from_millis(500),
        }
    }
}

pub struct Runner {
    threads: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    busy: Arc<BusyTime>,
}

/// How long each stage's workers spent handling messages, added across workers: where a
/// run's time went (the benchmark prints it).
#[derive(Default)]
pub struct BusyTime(Mutex<BTreeMap<&'static str, Duration>>);

impl BusyTime {
    fn add(&self, stage: &'static str, spent: Duration) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()).entry(stage).or_default() += spent;
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, Duration> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Runner {
    pub fn start(pipeline: Pipeline, queue: Arc<SqliteQueue>, config: RunnerConfig) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let busy = Arc::new(BusyTime::default());
        let mut threads = Vec::new();
        for q in Stage::ALL {
            for n in 0..config.workers_per_stage.max(1) {
                let (p, qu, c, s, b) = (pipeline.clone(), queue.clone(), config.clone(), stop.clone(), busy.clone());
                let handle = thread::Builder::new()
                    .name(format!("{q}-{n}"))
                    .spawn(move || worker(q, &p, &qu, &c, &s, &b))
                    .expect("spawn a worker thread");
                threads.push(handle);
            }
        }
        let (p, qu, c, s) = (pipeline, queue, config, stop.clone());
        threads.push(
            thread::Builder::new()
                .name("monitor".into())
                .spawn(move || monitor(&p, &qu, &c, &s))
                .expect("spawn the monitor thread"),
        );
        Self { threads, stop, busy }
    }

    /// Lets in-flight messages finish, then joins every worker; returns each stage's busy
    /// time.
    pub fn stop(self) -> BTreeMap<&'static str, Duration> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
        self.busy.snapshot()
    }
}

fn worker(stage: Stage, p: &Pipeline, queue: &SqliteQueue, config: &RunnerConfig, stop: &AtomicBool, busy: &BusyTime) {
    let queue_name = stage.name();
    let mut seen = queue.sends_seen(queue_name);
    while !stop.load(Ordering::SeqCst) {
        match queue.receive(queue_name, 1, config.visibility) {
            Ok(deliveries) if deliveries.is_empty() => {
                seen = queue.wait_for_send(queue_name, seen, config.idle_poll);
            }
            Ok(deliveries) => {
                for d in deliveries {
                    let started = Instant::now();
                    process(stage, p, queue, config, &d);
                    busy.add(queue_name, started.elapsed());
                }
            }
            Err(e) => {
                warn!(queue = queue_name, error = %e, "receive failed");
                thread::sleep(config.idle_poll);
            }
        }
    }
}

fn process(stage: Stage, p: &Pipeline, queue: &SqliteQueue, config: &RunnerConfig, d: &Delivery) {
    let queue_name = stage.name();
    let ctx = StageContext::with_budget(config.budget);
    let outcome = thread::scope(|scope| {
        let (done, beat) = mpsc::channel::<()>();
        scope.spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = beat.recv_timeout(config.visibility / 3) {
                if let Err(e) = queue.extend(queue_name, &d.receipt, config.visibility) {
                    warn!(queue = queue_name, error = %e, "could not extend a message's lease");
                }
            }
        });
        let outcome = p.handle(stage, &d.body, &ctx);
        drop(done);
        outcome
    });
    debug!(queue = queue_name, ?outcome, receive_count = d.receive_count, "handled");
    let result = match &outcome {
        Outcome::Retry(error) => {
            let backoff = vellum_core::pipeline::retry_backoff(config.retry_delay, d.receive_count);
            queue.nack(queue_name, &d.receipt, backoff, error)
        }
        _ => queue.ack(queue_name, &d.receipt),
    };
    if let Err(e) = result {
        warn!(queue = queue_name, error = %e, "could not settle a message; it will be delivered again");
    }
}

fn monitor(p: &Pipeline, queue: &SqliteQueue, config: &RunnerConfig, stop: &AtomicBool) {
    let mut cursor = 0;
    while !stop.load(Ordering::SeqCst) {
        match queue.dead_letters_after(cursor) {
            Ok(letters) => {
                for (seq, dl) in letters {
                    match fail_dead_lettered(p.state.as_ref(), p.uploads.as_ref(), &dl) {
                        Ok(_) => cursor = seq,
                        Err(e) => {
                            warn!(error = %e, "could not record a dead letter; will try again");
                            break;
                        }
                    }
                }
            }
            Err(e) => warn!(error = %e, "could not read dead letters"),
        }
        thread::sleep(config.idle_poll.max(Duration::from_millis(200)));
    }
}
