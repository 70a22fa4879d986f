//! The queue's contract: SQS's semantics, at least once, and no more than SQS promises, so
//! that the same checks hold on SQS: visibility and delays are whole seconds, depth is
//! approximate (it may lag, so it is waited for), messages come in any order, and a stale
//! receipt may or may not still delete its message.

use std::thread::sleep;
use std::time::{Duration, Instant};

use vellum_core::ports::Queue;

/// Builds a fresh queue that dead-letters after `max_receives`.
pub type Make = dyn Fn(u32) -> Box<dyn Queue>;

/// The shortest visibility SQS takes.
const SHORT: Duration = Duration::from_secs(1);
const LONG: Duration = Duration::from_secs(60);
/// Past a short lease, with room for clocks in whole seconds.
const AFTER_SHORT: Duration = Duration::from_millis(2200);

/// SQS's counts are approximate: wait (a little) for `count` to settle on `want`.
fn settles(what: &str, want: u64, count: impl Fn() -> u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = count();
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{what} stayed {got}, not {want}");
        sleep(Duration::from_millis(200));
    }
}

fn depth_settles(q: &dyn Queue, queue: &str, want: u64) {
    settles(&format!("the depth of {queue}"), want, || q.depth(queue).unwrap());
}

fn dead_letter_count_settles(q: &dyn Queue, queue: &str, want: u64) {
    settles(&format!("the dead letters of {queue}"), want, || q.dead_letter_count(queue).unwrap());
}

/// A receive that waits a little: SQS may answer an early receive empty.
fn receive_some(q: &dyn Queue, queue: &str, max: usize, visibility: Duration) -> Vec<vellum_core::ports::Delivery> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = q.receive(queue, max, visibility).unwrap();
        if !got.is_empty() || Instant::now() >= deadline {
            return got;
        }
        sleep(Duration::from_millis(100));
    }
}

pub fn send_receive_ack(make: &Make) {
    let q = make(5);
    q.send_batch("a", &["1".into(), "2".into()]).unwrap();
    q.send("b", "other queue").unwrap();
    depth_settles(q.as_ref(), "a", 2);
    let mut got = Vec::new();
    while got.len() < 2 {
        let more = receive_some(q.as_ref(), "a", 10, LONG);
        assert!(!more.is_empty(), "both messages arrive");
        got.extend(more);
    }
    // In any order: SQS does not keep one.
    let mut bodies: Vec<&str> = got.iter().map(|d| d.body.as_str()).collect();
    bodies.sort();
    assert_eq!(bodies, ["1", "2"]);
    assert!(got.iter().all(|d| d.receive_count == 1));
    for d in &got {
        q.ack("a", &d.receipt).unwrap();
    }
    depth_settles(q.as_ref(), "a", 0);
    assert!(q.receive("a", 10, LONG).unwrap().is_empty());
    assert_eq!(receive_some(q.as_ref(), "b", 10, LONG)[0].body, "other queue");
}

pub fn leases_hide_messages(make: &Make) {
    let q = make(5);
    q.send("a", "m").unwrap();
    let first = receive_some(q.as_ref(), "a", 1, Duration::from_secs(3));
    assert_eq!(first.len(), 1);
    assert!(q.receive("a", 1, SHORT).unwrap().is_empty(), "hidden while leased");
    sleep(Duration::from_secs(3) + Duration::from_millis(500));
    let again = receive_some(q.as_ref(), "a", 1, LONG);
    assert_eq!(again.len(), 1, "visible again when the lease runs out");
    assert_eq!(again[0].receive_count, 2);
    assert_eq!(again[0].message_id, first[0].message_id);
}

pub fn nack_returns_with_delay(make: &Make) {
    let q = make(5);
    q.send("a", "m").unwrap();
    let d = receive_some(q.as_ref(), "a", 1, LONG).remove(0);
    q.nack("a", &d.receipt, Duration::from_secs(3), "boom").unwrap();
    assert!(q.receive("a", 1, LONG).unwrap().is_empty(), "not before the delay");
    sleep(Duration::from_secs(3) + Duration::from_millis(500));
    assert_eq!(receive_some(q.as_ref(), "a", 1, LONG).len(), 1);
}

pub fn extend_keeps_a_lease(make: &Make) {
    let q = make(5);
    q.send("a", "m").unwrap();
    let d = receive_some(q.as_ref(), "a", 1, SHORT).remove(0);
    q.extend("a", &d.receipt, LONG).unwrap();
    sleep(AFTER_SHORT);
    assert!(q.receive("a", 1, LONG).unwrap().is_empty(), "an extended lease holds");
}

pub fn dead_letters_after_max_receives(make: &Make) {
    let q = make(2);
    q.send("a", "poison").unwrap();
    for n in 1..=2 {
        let d = receive_some(q.as_ref(), "a", 1, LONG).remove(0);
        assert_eq!(d.receive_count, n);
        q.nack("a", &d.receipt, Duration::ZERO, &format!("failure {n}")).unwrap();
    }
    assert!(q.receive("a", 1, LONG).unwrap().is_empty(), "received twice: dead-lettered");
    let dead = q.dead_letters("a").unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "poison");
    assert_eq!(dead[0].receive_count, 2);
    dead_letter_count_settles(q.as_ref(), "a", 1);
    // The last error, where the queue can keep one (SQS keeps no reason with a message).
    if let Some(error) = &dead[0].last_error {
        assert_eq!(error, "failure 2");
    }
    depth_settles(q.as_ref(), "a", 0);
}

/// SQS may accept an old receipt and delete the message, or ignore it; either way it is
/// no error, and the newest receipt always deletes it.
pub fn stale_receipts_are_ignored(make: &Make) {
    let q = make(5);
    q.send("a", "m").unwrap();
    let old = receive_some(q.as_ref(), "a", 1, SHORT).remove(0);
    sleep(AFTER_SHORT);
    let new = receive_some(q.as_ref(), "a", 1, LONG).remove(0);
    assert_eq!(new.message_id, old.message_id);
    q.ack("a", &old.receipt).unwrap();
    q.ack("a", &new.receipt).unwrap();
    depth_settles(q.as_ref(), "a", 0);
}

/// A redrive sends the dead-lettered messages back to their queue, received afresh; the
/// dead-letter queue is then empty, and another queue's letters stay.
pub fn dead_letters_are_redriven(make: &Make) {
    let q = make(1);
    q.send("a", "first").unwrap();
    q.send("b", "other").unwrap();
    for queue in ["a", "b"] {
        let d = receive_some(q.as_ref(), queue, 1, LONG).remove(0);
        q.nack(queue, &d.receipt, Duration::ZERO, "broken").unwrap();
        // The next receive moves it to the dead-letter queue.
        assert!(q.receive(queue, 1, LONG).unwrap().is_empty());
    }
    assert_eq!(q.dead_letters("a").unwrap().len(), 1);
    assert_eq!(q.redrive("a").unwrap(), 1);
    assert!(q.dead_letters("a").unwrap().is_empty(), "nothing left dead-lettered");
    assert_eq!(q.dead_letters("b").unwrap().len(), 1, "another queue's letters stay");
    dead_letter_count_settles(q.as_ref(), "a", 0);
    dead_letter_count_settles(q.as_ref(), "b", 1);
    let back = receive_some(q.as_ref(), "a", 1, LONG);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].body, "first");
    assert_eq!(back[0].receive_count, 1, "received afresh");
    assert_eq!(q.redrive("a").unwrap(), 0);
}
