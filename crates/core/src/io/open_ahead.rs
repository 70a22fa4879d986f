//! Objects opened ahead of the one being read, several at once. On S3 each open waits for
//! its first byte (about 15 ms), so a writer taking 100,000 small files one after another
//! would spend 25 minutes waiting alone; opened `ahead` at a time, the wait overlaps. A
//! small object is read whole by its opener; a large one is handed over as its stream.

use std::collections::VecDeque;
use std::io::Read;

use crate::ports::{ObjectStore, PortError, PortResult};

/// Objects up to this size are read whole ahead; larger ones stream.
const READ_WHOLE: u64 = 1 << 20;

/// An object's bytes, read whole or to be streamed.
pub enum Opened {
    Whole(Vec<u8>),
    Stream(Box<dyn Read + Send>),
}

impl Opened {
    pub fn into_reader(self) -> Box<dyn Read + Send> {
        match self {
            Opened::Whole(bytes) => Box::new(std::io::Cursor::new(bytes)),
            Opened::Stream(reader) => reader,
        }
    }
}

fn open(store: &dyn ObjectStore, key: &str, size: u64) -> PortResult<Opened> {
    let reader = store.get(key)?;
    if size > READ_WHOLE {
        return Ok(Opened::Stream(reader));
    }
    // One byte past the size recorded, so that a reader can tell a longer object.
    let mut bytes = Vec::with_capacity(size as usize + 1);
    reader.take(size + 1).read_to_end(&mut bytes)?;
    Ok(Opened::Whole(bytes))
}

/// Hands `consume` each wanted object in order (None where nothing is wanted), opened up to
/// `ahead` objects before it is reached; stops when `consume` answers false. With `ahead` of
/// 1 or less each is opened when it is reached, on this thread.
pub fn each_opened<E>(
    store: &dyn ObjectStore,
    wanted: &[Option<(String, u64)>],
    ahead: usize,
    mut consume: impl FnMut(usize, Option<PortResult<Opened>>) -> Result<bool, E>,
) -> Result<(), E> {
    if ahead <= 1 {
        for (i, w) in wanted.iter().enumerate() {
            if !consume(i, w.as_ref().map(|(key, size)| open(store, key, *size)))? {
                break;
            }
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        let mut pending = VecDeque::with_capacity(ahead);
        let mut next = 0;
        for i in 0..wanted.len() {
            while next < wanted.len() && next < i + ahead {
                let handle = wanted[next].as_ref().map(|(key, size)| scope.spawn(move || open(store, key, *size)));
                pending.push_back(handle);
                next += 1;
            }
            let opened = pending.pop_front().expect("opened in order").map(|handle| {
                handle.join().unwrap_or_else(|_| Err(PortError::Unavailable("an object's opener panicked".into())))
            });
            if !consume(i, opened)? {
                break;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{ObjectMeta, ObjectWriter, Page};
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    /// A store whose opens each take a while, counting how many are under way at once.
    #[derive(Default)]
    struct Slow {
        objects: Mutex<BTreeMap<String, Vec<u8>>>,
        open_now: AtomicUsize,
        most_at_once: AtomicUsize,
    }

    impl ObjectStore for Slow {
        fn bucket(&self) -> &str {
            "slow"
        }
        fn head(&self, _: &str) -> PortResult<Option<ObjectMeta>> {
            unimplemented!("not used")
        }
        fn get(&self, key: &str) -> PortResult<Box<dyn Read + Send>> {
            let now = self.open_now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_at_once.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            self.open_now.fetch_sub(1, Ordering::SeqCst);
            let bytes = self.objects.lock().unwrap().get(key).cloned().ok_or(PortError::NotFound(key.into()))?;
            Ok(Box::new(std::io::Cursor::new(bytes)))
        }
        fn get_range(&self, _: &str, _: u64, _: u64) -> PortResult<Vec<u8>> {
            unimplemented!("not used")
        }
        fn writer(&self, _: &str) -> PortResult<Box<dyn ObjectWriter>> {
            unimplemented!("not used")
        }
        fn list_page(&self, _: &str, _: Option<&str>, _: usize) -> PortResult<Page<ObjectMeta>> {
            unimplemented!("not used")
        }
        fn put_tags(&self, _: &str, _: &BTreeMap<String, String>) -> PortResult<()> {
            unimplemented!("not used")
        }
        fn get_tags(&self, _: &str) -> PortResult<BTreeMap<String, String>> {
            unimplemented!("not used")
        }
        fn delete(&self, _: &str) -> PortResult<()> {
            unimplemented!("not used")
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    #[test]
    fn objects_come_in_order_opened_several_at_once_and_a_stop_stops() {
        let store = Slow::default();
        let mut wanted = Vec::new();
        for i in 0..40u64 {
            // Every fifth wants nothing; one is too large to be read whole.
            if i % 5 == 4 {
                wanted.push(None);
                continue;
            }
            let len = if i == 7 { READ_WHOLE as usize + 10 } else { i as usize };
            store.objects.lock().unwrap().insert(format!("k{i}"), vec![i as u8; len]);
            wanted.push(Some((format!("k{i}"), len as u64)));
        }
        let mut seen = Vec::new();
        each_opened(&store, &wanted, 8, |i, opened| -> Result<bool, PortError> {
            match opened {
                None => assert!(wanted[i].is_none()),
                Some(opened) => {
                    let opened = opened?;
                    assert_eq!(matches!(opened, Opened::Stream(_)), i == 7, "only the large one streams");
                    let mut bytes = Vec::new();
                    opened.into_reader().read_to_end(&mut bytes).unwrap();
                    assert_eq!(bytes.len() as u64, wanted[i].as_ref().unwrap().1);
                    assert!(bytes.iter().all(|b| *b == i as u8));
                }
            }
            seen.push(i);
            Ok(i < 30)
        })
        .unwrap();
        assert_eq!(seen, (0..=30).collect::<Vec<_>>(), "in order, up to the stop");
        let most = store.most_at_once.load(Ordering::SeqCst);
        assert!(most > 1 && most <= 8, "opened several at once, never more than asked: {most}");
    }
}
