//! The chaos driver: a pipeline with every port under seeded faults (the one injector,
//! `vellum_contract::faults`), and queues at their worst: messages delivered twice, late
//! (held back a round) and out of order.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

pub use vellum_contract::faults::Faults;
use vellum_contract::faults::{Faulty, Injector};
use vellum_core::model::Stage;
use vellum_core::ports::{Delivery, ObjectStore, Queue, StateStore};
use vellum_core::{Outcome, Pipeline, StageContext};

/// The pipeline with every port wrapped.
pub fn faulty_pipeline(p: &Pipeline, faults: &Arc<Faults>) -> Pipeline {
    let injector: Arc<dyn Injector> = faults.clone();
    let store =
        |s: &Arc<dyn ObjectStore>| -> Arc<dyn ObjectStore> { Arc::new(Faulty::new(s.clone(), injector.clone())) };
    let mut faulty = p.clone();
    faulty.uploads = store(&p.uploads);
    faulty.working = store(&p.working);
    faulty.aips = store(&p.aips);
    faulty.replica = p.replica.as_ref().map(store);
    faulty.state = Arc::new(Faulty::new(p.state.clone(), injector.clone()));
    faulty.queue = Arc::new(Faulty::new(p.queue.clone(), injector.clone()));
    faulty.scanner = p.scanner.as_ref().map(|s| Arc::new(Faulty::new(s.clone(), injector.clone())) as _);
    faulty.notifier = Arc::new(Faulty::new(p.notifier.clone(), injector.clone()));
    faulty
}

/// Delivers every message until all queues are empty, as a queue at its worst: in shuffled
/// order, some held back a round (late), some handled twice; each invocation armed with the
/// seed's faults. Dead letters fail their transfers, as the runner does. Gives how many
/// invocations there were.
pub fn drive_with_faults(queue: &dyn Queue, pipeline: &Pipeline, faults: &Faults, state: &dyn StateStore) -> usize {
    let ctx = StageContext::with_budget(Duration::from_secs(600));
    let mut held: Vec<(&str, Delivery)> = Vec::new();
    let mut held_once: HashSet<String> = HashSet::new();
    let mut invocations = 0;
    let handle = |q: &str, body: &str| {
        faults.arm();
        let outcome = pipeline.handle_queue(q, body, &ctx);
        faults.disarm();
        outcome
    };
    for _round in 0..100_000 {
        let mut pool: Vec<(&str, Delivery)> = std::mem::take(&mut held);
        for q in Stage::ALL.map(Stage::name) {
            pool.extend(queue.receive(q, 10, Duration::from_secs(600)).unwrap().into_iter().map(|d| (q, d)));
        }
        if pool.is_empty() {
            break;
        }
        // Out of order: a shuffle by the seed.
        for i in (1..pool.len()).rev() {
            pool.swap(i, faults.below(i as u64 + 1) as usize);
        }
        for (q, d) in pool {
            if faults.chance(faults.rate) && held_once.insert(d.receipt.clone()) {
                faults.note(format!("late: a {q} message"));
                held.push((q, d));
                continue;
            }
            invocations += 1;
            let outcome = handle(q, &d.body);
            match &outcome {
                Outcome::Retry(why) => queue.nack(q, &d.receipt, Duration::ZERO, why).unwrap(),
                _ => queue.ack(q, &d.receipt).unwrap(),
            }
            if faults.chance(faults.rate) {
                faults.note(format!("twice: a {q} message"));
                invocations += 1;
                if let Outcome::Retry(_) = handle(q, &d.body) {
                    // As SQS would: the copy comes back too.
                    queue.send(q, &d.body).unwrap();
                }
            }
        }
    }
    for q in Stage::ALL.map(Stage::name) {
        for dl in queue.dead_letters(q).unwrap() {
            let _ = vellum_core::operations::monitor::fail_dead_lettered(state, pipeline.uploads.as_ref(), &dl);
        }
    }
    invocations
}
