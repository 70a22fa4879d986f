//! The answers many readers ask for over and over (`/status`, the transfer list as JSON and
//! as the page, a transfer's detail that open pages poll), read from the stores at most once
//! a second: a hundred dashboards and scripts polling at once then
//! cost the pipeline one read a second, not one each. A change made through the dashboard
//! forgets them, so a person sees their own change at once; the pipeline's own changes show
//! within the second.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// More distinct questions than this (other filters, searches, cursors) and the oldest are
/// dropped: the cache stays small whatever readers ask.
const MAX_ANSWERS: usize = 256;

pub struct AnswerCache {
    fresh_for: Duration,
    answers: Mutex<HashMap<String, (Instant, Vec<u8>)>>,
}

impl AnswerCache {
    /// Answers kept for `fresh_for`; `Duration::ZERO` keeps none.
    pub fn new(fresh_for: Duration) -> Self {
        Self { fresh_for, answers: Mutex::new(HashMap::new()) }
    }

    /// What `vellum serve` and the Lambda keep: a second.
    pub fn for_serving() -> Self {
        Self::new(Duration::from_secs(1))
    }

    /// The answer to `question` given within the last `fresh_for`, or `read`'s, kept when
    /// it is `Ok`. The answer is the body's bytes.
    pub fn answer<E>(&self, question: &str, read: impl FnOnce() -> Result<Vec<u8>, E>) -> Result<Vec<u8>, E> {
        if self.fresh_for.is_zero() {
            return read();
        }
        if let Some((at, body)) = self.lock().get(question) {
            if at.elapsed() < self.fresh_for {
                return Ok(body.clone());
            }
        }
        // Read outside the lock: a slow store does not hold up the other questions.
        let body = read()?;
        let mut answers = self.lock();
        if answers.len() >= MAX_ANSWERS {
            let now = Instant::now();
            answers.retain(|_, (at, _)| now.duration_since(*at) < self.fresh_for);
            if answers.len() >= MAX_ANSWERS {
                answers.clear();
            }
        }
        answers.insert(question.to_string(), (Instant::now(), body.clone()));
        Ok(body)
    }

    /// As [`AnswerCache::answer`], for a read that may give something other than an answer
    /// to keep (a refusal, a redirect): that is handed back as it is, not kept.
    pub fn answer_unless<R, E>(
        &self,
        question: &str,
        read: impl FnOnce() -> Result<Result<Vec<u8>, R>, E>,
    ) -> Result<Result<Vec<u8>, R>, E> {
        let answer = self.answer(question, || match read() {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(other)) => Err(Ok(other)),
            Err(e) => Err(Err(e)),
        });
        match answer {
            Ok(body) => Ok(Ok(body)),
            Err(not_kept) => not_kept.map(Err),
        }
    }

    /// Forgets every answer: something was changed through the dashboard.
    pub fn forget(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Vec<u8>)>> {
        self.answers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn ask(cache: &AnswerCache, question: &str, reads: &Cell<u32>) -> Vec<u8> {
        cache
            .answer::<()>(question, || {
                reads.set(reads.get() + 1);
                Ok(reads.get().to_string().into_bytes())
            })
            .unwrap()
    }

    #[test]
    fn an_answer_is_read_once_while_fresh_and_again_after() {
        let cache = AnswerCache::new(Duration::from_millis(300));
        let reads = Cell::new(0);
        assert_eq!(ask(&cache, "/status", &reads), b"1");
        assert_eq!(ask(&cache, "/status", &reads), b"1", "fresh: not read again");
        assert_eq!(ask(&cache, "/api/transfers?limit=20", &reads), b"2", "another question is read");
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(ask(&cache, "/status", &reads), b"3", "stale: read again");
    }

    #[test]
    fn a_change_forgets_every_answer_and_failures_are_not_kept() {
        let cache = AnswerCache::new(Duration::from_secs(60));
        let reads = Cell::new(0);
        ask(&cache, "/status", &reads);
        cache.forget();
        assert_eq!(ask(&cache, "/status", &reads), b"2");
        assert_eq!(cache.answer("/x", || Err("store down")), Err("store down"));
        assert_eq!(ask(&cache, "/x", &reads), b"3", "a failure is not kept");
    }

    #[test]
    fn zero_keeps_nothing_and_many_questions_stay_bounded() {
        let reads = Cell::new(0);
        let off = AnswerCache::new(Duration::ZERO);
        ask(&off, "/status", &reads);
        assert_eq!(ask(&off, "/status", &reads), b"2");
        let cache = AnswerCache::new(Duration::from_secs(60));
        for i in 0..(MAX_ANSWERS * 3) {
            ask(&cache, &format!("/api/transfers?q={i}"), &reads);
        }
        assert!(cache.lock().len() <= MAX_ANSWERS);
    }
}
