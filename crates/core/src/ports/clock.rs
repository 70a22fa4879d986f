//! The clock's port: time and ids.

use uuid::Uuid;

use crate::model::Timestamp;

/// Time and ids, injectable so tests can pin them.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
    fn new_id(&self) -> Uuid;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
    fn new_id(&self) -> Uuid {
        Uuid::new_v4()
    }
}
