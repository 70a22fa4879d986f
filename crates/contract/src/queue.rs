//! The queue's contract: SQS's semantics, at least once.

use std::thread::sleep;
use std::time::Duration;

use vellum_core::ports::Queue;

/// Builds a fresh queue that dead-letters after `max_receives`.
pub type Make = dyn Fn(u32) -> Box<dyn Queue>;

const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(60);

pub fn send_receive_ack(make: &Make) {
    let q = make(5);
    q.send_batch("a", &["1".into(), "2".into()]).unwrap();
    q.send("b", "other queue").unwrap();
    assert_eq!(q.depth("a").unwrap(), 2);
    let got = q.receive("a", 10, LONG).unwrap();
    let mut bodies: Vec<&str> = got.iter().map(|d| d.body.as_str()).collect();
    bodies.sort();
    assert_eq!(bodies, ["1", "2"]);
    assert!(got.iter().all(|d| d.receive_count == 1));
    for d in &got {
        q.ack("a", &d.receipt).unwrap();
    }
    assert_eq!(q.depth("a").unwrap(), 0);
    assert!(q.receive("a", 10, LONG).unwrap().is_empty());
    assert_eq!(q.receive("b", 10, LONG).unwrap()[0].body, "other queue");
}

pub fn leases_hide_messages(make: &Make) {
    let q = make(5);
    q.send("a", "m").unwrap();
    let first = q.receive("a", 1, SHORT).unwrap();
    assert_eq!(first.len(), 1);
    assert!(q.receive("a", 1, SHORT).unwrap().is_empty(), "hidden while leased");
    sleep(SHORT + Duration::from_millis(150));
    let again = q.receive("a", 1, LONG).unwrap();
    assert_eq!(again.len(), 1, "visible again when the lease runs out");
    assert_eq!(again[0].receive_count, 2);
    assert_eq!(again[0].message_id, first[0].message_id);
}

pub fn nack_returns_with_delay(make: &Make) {
    let q = make(5);
    q.send("a", "m").unwrap();
    let d = q.receive("a", 1, LONG).unwrap().remove(0);
    q.nack("a", &d.receipt, SHORT, "boom").unwrap();
    assert!(q.receive("a", 1, LONG).unwrap().is_empty(), "not before the delay");
    sleep(SHORT + Duration::from_millis(150));
    assert_eq!(q.receive("a", 1, LONG).unwrap().len(), 1);
}

pub fn extend_keeps_a_lease(make: &Make) {
    let q = make(5);
    q.send("a", "m").unwrap();
    let d = q.receive("a", 1, SHORT).unwrap().remove(0);
    q.extend("a", &d.receipt, LONG).unwrap();
    sleep(SHORT + Duration::from_millis(150));
    assert!(q.receive("a", 1, LONG).unwrap().is_empty(), "an extended lease holds");
}

pub fn dead_letters_after_max_receives(make: &Make) {
    let q = make(2);
    q.send("a", "poison").unwrap();
    for n in 1..=2 {
        let d = q.receive("a", 1, LONG).unwrap().remove(0);
        assert_eq!(d.receive_count, n);
        q.nack("a", &d.receipt, Duration::ZERO, &format!("failure {n}")).unwrap();
    }
    assert!(q.receive("a", 1, LONG).unwrap().is_empty(), "received twice: dead-lettered");
    let dead = q.dead_letters("a").unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "poison");
    assert_eq!(dead[0].receive_count, 2);
    assert_eq!(dead[0].last_error.as_deref(), Some("failure 2"));
    assert_eq!(q.depth("a").unwrap(), 0);
}

pub fn stale_receipts_are_ignored(make: &Make) {
    let q = make(5);
    q.send("a", "m").unwrap();
    let old = q.receive("a", 1, SHORT).unwrap().remove(0);
    sleep(SHORT + Duration::from_millis(150));
    let new = q.receive("a", 1, LONG).unwrap().remove(0);
    q.ack("a", &old.receipt).unwrap();
    assert_eq!(q.depth("a").unwrap(), 1, "an old receipt does not delete a re-received message");
    q.ack("a", &new.receipt).unwrap();
    assert_eq!(q.depth("a").unwrap(), 0);
}
