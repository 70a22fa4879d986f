//! Guessing slowed down: failed sign-ins and wrong API keys are counted per address and per
//! user name, and past a few free failures each one holds that address (or that user, for
//! the addresses that failed) back for a while that doubles, up to a cap. While held back a
//! request is answered 429 with `Retry-After` and its key is not even looked at.
//!
//! A user's hold applies only to addresses that have failed lately: whoever guesses at one
//! user's key from many addresses gets one guess per address per hold, while the user, from
//! an address that has not failed, still gets in.
//!
//! Kept in memory, per process: `vellum serve` is one process; on AWS each warm dashboard
//! instance keeps its own (reserved concurrency bounds how many there are, and API
//! Gateway's own throttling stands in front).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many failures are free and how long a hold lasts.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    /// Failures from one address before it is held back.
    pub free_per_address: u32,
    /// Failures for one user name before it is held back.
    pub free_per_user: u32,
    /// The first hold; each further failure doubles it.
    pub first_hold: Duration,
    /// The longest hold.
    pub longest_hold: Duration,
    /// Failures older than this are forgotten.
    pub memory: Duration,
    /// Addresses and names remembered at most (an attacker with many addresses cannot
    /// grow this without bound: the least recent are forgotten first).
    pub capacity: usize,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        Self {
            free_per_address: 20,
            free_per_user: 5,
            first_hold: Duration::from_secs(1),
            longest_hold: Duration::from_secs(30),
            memory: Duration::from_secs(15 * 60),
            capacity: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Strikes {
    failures: u32,
    last: Instant,
    held_until: Option<Instant>,
}

/// What has been refused since the process started, and since the last metric was sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refusals {
    /// Wrong keys and failed sign-ins.
    pub wrong_credentials: u64,
    /// Requests answered 429 while held back.
    pub throttled: u64,
}

pub struct Throttle {
    limits: ThrottleLimits,
    strikes: Mutex<HashMap<String, Strikes>>,
    wrong: AtomicU64,
    throttled: AtomicU64,
    reported: Mutex<Refusals>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(ThrottleLimits::default())
    }
}

fn address_key(address: Option<&str>) -> String {
    format!("address {}", address.unwrap_or("unknown"))
}

fn user_key(user: &str) -> String {
    format!("user {user}")
}

impl Throttle {
    pub fn new(limits: ThrottleLimits) -> Self {
        Self {
            limits,
            strikes: Mutex::new(HashMap::new()),
            wrong: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            reported: Mutex::new(Refusals::default()),
        }
    }

    /// How long a request from `address` for `user` must wait; None when it may go on.
    pub fn hold(&self, address: Option<&str>, user: &str) -> Option<Duration> {
        let now = Instant::now();
        let strikes = self.strikes.lock().unwrap_or_else(|p| p.into_inner());
        let remaining =
            |key: &str| strikes.get(key).and_then(|s| s.held_until).and_then(|until| until.checked_duration_since(now));
        let by_address = remaining(&address_key(address));
        let address_failed = strikes.get(&address_key(address)).is_some_and(|s| now - s.last < self.limits.memory);
        let by_user = if address_failed { remaining(&user_key(user)) } else { None };
        let wait = by_address.max(by_user).filter(|w| !w.is_zero());
        if wait.is_some() {
            self.throttled.fetch_add(1, Ordering::Relaxed);
        }
        wait
    }

    /// A wrong key or a failed sign-in from `address` for `user`.
    pub fn failed(&self, address: Option<&str>, user: &str) {
        self.wrong.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut strikes = self.strikes.lock().unwrap_or_else(|p| p.into_inner());
        if strikes.len() + 2 > self.limits.capacity {
            self.forget(&mut strikes, now);
        }
        for (key, free) in
            [(address_key(address), self.limits.free_per_address), (user_key(user), self.limits.free_per_user)]
        {
            let s = strikes.entry(key).or_insert(Strikes { failures: 0, last: now, held_until: None });
            if now - s.last >= self.limits.memory {
                *s = Strikes { failures: 0, last: now, held_until: None };
            }
            s.failures += 1;
            s.last = now;
            if s.failures > free {
                let doublings = (s.failures - free - 1).min(16);
                let hold = self.limits.first_hold.saturating_mul(1 << doublings).min(self.limits.longest_hold);
                s.held_until = Some(now + hold);
            }
        }
    }

    /// The right key for `user`: their failures are forgotten (the address's are not, so
    /// one account's key does not buy an address more guesses at another's).
    pub fn succeeded(&self, user: &str) {
        self.strikes.lock().unwrap_or_else(|p| p.into_inner()).remove(&user_key(user));
    }

    /// Everything refused since the process started.
    pub fn refusals(&self) -> Refusals {
        Refusals {
            wrong_credentials: self.wrong.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
        }
    }

    /// What was refused since the last call: what a metric line reports.
    pub fn unreported(&self) -> Refusals {
        let now = self.refusals();
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        let since = Refusals {
            wrong_credentials: now.wrong_credentials - reported.wrong_credentials,
            throttled: now.throttled - reported.throttled,
        };
        *reported = now;
        since
    }

    fn forget(&self, strikes: &mut HashMap<String, Strikes>, now: Instant) {
        strikes.retain(|_, s| now - s.last < self.limits.memory || s.held_until.is_some_and(|u| u > now));
        while strikes.len() + 2 > self.limits.capacity {
            let Some(oldest) = strikes.iter().min_by_key(|(_, s)| s.last).map(|(k, _)| k.clone()) else { break };
            strikes.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> Throttle {
        Throttle::new(ThrottleLimits {
            free_per_address: 3,
            free_per_user: 2,
            first_hold: Duration::from_millis(100),
            longest_hold: Duration::from_millis(400),
            capacity: 8,
            ..ThrottleLimits::default()
        })
    }

    #[test]
    fn a_few_failures_are_free_then_each_doubles_the_hold_up_to_the_cap() {
        let t = quick();
        t.failed(Some("10.0.0.1"), "ann");
        t.failed(Some("10.0.0.1"), "ann");
        assert_eq!(t.hold(Some("10.0.0.1"), "ann"), None, "two failures are free for a user");
        t.failed(Some("10.0.0.1"), "ann");
        let first = t.hold(Some("10.0.0.1"), "ann").expect("the third holds the user back");
        assert!(first <= Duration::from_millis(100) && first > Duration::from_millis(50), "{first:?}");
        for _ in 0..6 {
            t.failed(Some("10.0.0.1"), "ann");
        }
        let capped = t.hold(Some("10.0.0.1"), "ann").unwrap();
        assert!(capped > Duration::from_millis(300) && capped <= Duration::from_millis(400), "{capped:?}");
        assert_eq!(t.refusals(), Refusals { wrong_credentials: 9, throttled: 2 });
        assert_eq!(t.unreported(), Refusals { wrong_credentials: 9, throttled: 2 });
        assert_eq!(t.unreported(), Refusals::default(), "reported once");
    }

    #[test]
    fn a_users_hold_binds_only_addresses_that_failed_and_ends() {
        let t = quick();
        for address in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
            t.failed(Some(address), "ann");
        }
        assert!(t.hold(Some("10.0.0.3"), "ann").is_some(), "a failing address is held for the user");
        assert_eq!(t.hold(Some("10.0.0.9"), "ann"), None, "an address that never failed is not");
        assert_eq!(t.hold(Some("10.0.0.3"), "bob"), None, "nor is another user from that address, yet");
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(t.hold(Some("10.0.0.3"), "ann"), None, "the hold ends");
        t.succeeded("ann");
        t.failed(Some("10.0.0.3"), "ann");
        assert_eq!(t.hold(Some("10.0.0.3"), "ann"), None, "the right key forgot the user's failures");
    }

    #[test]
    fn an_address_is_held_across_user_names_and_memory_is_bounded() {
        let t = quick();
        for name in ["a", "b", "c", "d"] {
            t.failed(Some("10.0.0.1"), name);
        }
        assert!(t.hold(Some("10.0.0.1"), "e").is_some(), "guessing names from one address holds the address");
        for i in 0..50 {
            t.failed(Some(&format!("10.1.0.{i}")), "z");
        }
        assert!(t.strikes.lock().unwrap().len() <= 8);
    }
}
