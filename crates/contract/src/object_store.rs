//! The object store's contract.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use vellum_core::ports::{ComposeProgress, ObjectStore, PortError};

pub type Make = dyn Fn() -> Box<dyn ObjectStore>;

fn read_all(s: &dyn ObjectStore, key: &str) -> Vec<u8> {
    let mut out = Vec::new();
    s.get(key).expect("get").read_to_end(&mut out).expect("read");
    out
}

pub fn round_trip(make: &Make) {
    let s = make();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let meta = s.put("a/b/c.bin", &body).expect("put");
    assert_eq!(meta.size, body.len() as u64);
    assert_eq!(s.head("a/b/c.bin").unwrap().unwrap().size, body.len() as u64);
    assert_eq!(read_all(s.as_ref(), "a/b/c.bin"), body);
    s.put("a/b/c.bin", b"replaced").unwrap();
    assert_eq!(read_all(s.as_ref(), "a/b/c.bin"), b"replaced", "a put replaces the object whole");
    s.put("empty", b"").unwrap();
    assert_eq!(s.head("empty").unwrap().unwrap().size, 0);
}

pub fn missing_objects(make: &Make) {
    let s = make();
    assert!(s.head("nope").unwrap().is_none());
    assert!(matches!(s.get("nope"), Err(PortError::NotFound(_))));
    assert!(matches!(s.get_range("nope", 0, 1), Err(PortError::NotFound(_))));
}

pub fn ranged_reads(make: &Make) {
    let s = make();
    s.put("r", b"0123456789").unwrap();
    assert_eq!(s.get_range("r", 2, 3).unwrap(), b"234");
    assert_eq!(s.get_range("r", 8, 10).unwrap(), b"89", "a range past the end is cut at the end");
    assert_eq!(s.get_range("r", 0, 10).unwrap(), b"0123456789");
}

pub fn uncommitted_writes_are_invisible(make: &Make) {
    let s = make();
    let mut w = s.writer("pending").unwrap();
    w.write_all(b"half").unwrap();
    assert!(s.head("pending").unwrap().is_none(), "nothing shows before commit");
    drop(w);
    assert!(s.head("pending").unwrap().is_none(), "an abandoned write leaves nothing");
    assert!(s.list("").unwrap().is_empty(), "an abandoned write leaves nothing listed");
    let mut w = s.writer("done").unwrap();
    w.write_all(b"whole").unwrap();
    w.commit().unwrap();
    assert_eq!(read_all(s.as_ref(), "done"), b"whole");
}

pub fn list_by_prefix(make: &Make) {
    let s = make();
    for k in ["t/2/b", "t/1/a", "t/10", "u/x", "t1"] {
        s.put(k, k.as_bytes()).unwrap();
    }
    let keys: Vec<String> = s.list("t/").unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(keys, ["t/1/a", "t/10", "t/2/b"], "lexicographic, prefix only");
    let keys: Vec<String> = s.list("t").unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(keys, ["t/1/a", "t/10", "t/2/b", "t1"]);
    assert_eq!(s.list("").unwrap().len(), 5);
    assert_eq!(s.list("t/1").unwrap().len(), 2, "a prefix need not end at a folder");
    // A prefix that is a path out of the store is the prefix of no key.
    for outside in ["/etc/", "/usr", "../", "t/../../", "/"] {
        assert!(s.list(outside).unwrap().is_empty(), "{outside:?} lists nothing");
    }
}

pub fn tags(make: &Make) {
    let s = make();
    s.put("tagged.zip", b"z").unwrap();
    assert!(s.get_tags("tagged.zip").unwrap().is_empty());
    let tags =
        BTreeMap::from([("TransferId".to_string(), "abc".to_string()), ("Profile".into(), "born_digital".into())]);
    s.put_tags("tagged.zip", &tags).unwrap();
    assert_eq!(s.get_tags("tagged.zip").unwrap(), tags);
    assert_eq!(read_all(s.as_ref(), "tagged.zip"), b"z", "tagging never changes the object");
    assert!(matches!(s.put_tags("missing", &tags), Err(PortError::NotFound(_))));
}

pub fn delete(make: &Make) {
    let s = make();
    s.put("d/x", b"1").unwrap();
    s.delete("d/x").unwrap();
    assert!(s.head("d/x").unwrap().is_none());
    assert!(s.list("d/").unwrap().is_empty());
    s.delete("d/x").expect("deleting what is gone is fine");
}

pub fn delete_prefix(make: &Make) {
    let s = make();
    for key in ["t/1/a", "t/1/b/c", "t/1/b/d/e", "t/10/kept", "t/1-kept"] {
        s.put(key, b"x").unwrap();
    }
    s.delete_prefix("t/1/").unwrap();
    let left: Vec<String> = s.list("t/").unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(left, vec!["t/1-kept".to_string(), "t/10/kept".to_string()], "only what the prefix holds goes");
    s.delete_prefix("t/1/").expect("deleting what is gone is fine");
}

pub fn awkward_keys(make: &Make) {
    let s = make();
    for k in ["born-digital/A B (1).zip", "x/ünïcödé/文件.txt", "x/.hidden", "x/percent%20.txt"] {
        s.put(k, k.as_bytes()).unwrap();
        assert_eq!(read_all(s.as_ref(), k), k.as_bytes(), "{k}");
    }
    assert_eq!(s.list("x/").unwrap().len(), 3);
}

/// An object larger than one upload part, written in small pieces, reads back whole, and a
/// ranged read across a part boundary is exact.
pub fn large_objects_stream_in_parts(make: &Make) {
    let s = make();
    let body: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut w = s.writer("big/object.bin").unwrap();
    for chunk in body.chunks(100_003) {
        w.write_all(chunk).unwrap();
    }
    assert!(s.head("big/object.bin").unwrap().is_none(), "nothing is visible before the commit");
    let meta = w.commit().unwrap();
    assert_eq!(meta.size, body.len() as u64);
    assert!(read_all(s.as_ref(), "big/object.bin") == body, "the object reads back whole");
    let at = 8 * 1024 * 1024 - 10;
    assert_eq!(s.get_range("big/object.bin", at as u64, 20).unwrap(), &body[at..at + 20]);
}

/// Eleven parts under `prefix`, each at S3's smallest part copy (5 MiB) but the last, each
/// part's bytes its own; and what they make joined.
fn eleven_parts(s: &dyn ObjectStore, prefix: &str) -> (Vec<String>, Vec<u8>) {
    let mut want = Vec::new();
    let mut parts = Vec::new();
    for i in 0..11u8 {
        let len = if i == 10 { 1000 } else { 5 * 1024 * 1024 };
        let body: Vec<u8> = (0..len).map(|j| (j as u8).wrapping_mul(31).wrapping_add(i)).collect();
        let key = format!("{prefix}/{i:02}");
        s.put(&key, &body).unwrap();
        want.extend_from_slice(&body);
        parts.push(key);
    }
    (parts, want)
}

/// `compose` of more parts than are copied at once (S3 copies them in waves, concurrently):
/// every part in its place.
pub fn compose_joins_many_parts_in_order(make: &Make) {
    let s = make();
    let (parts, want) = eleven_parts(s.as_ref(), "many");
    let meta = s.compose("joined/many", s.as_ref(), &parts).unwrap();
    assert_eq!(meta.size, want.len() as u64);
    assert!(read_all(s.as_ref(), "joined/many") == want, "eleven parts joined in order");
}

/// `compose_within`, cut by a deadline after every step and handed back its progress (as a
/// checkpoint would keep it, written and read back), goes on where it stopped and joins the
/// parts as `compose` does. Returns how many calls it took.
pub fn compose_within_goes_on_where_it_stopped(make: &Make) -> usize {
    let s = make();
    let (parts, want) = eleven_parts(s.as_ref(), "steps");
    let mut kept = serde_json::to_string(&ComposeProgress::default()).unwrap();
    let mut calls = 0;
    let meta = loop {
        calls += 1;
        assert!(calls <= 12, "the copy goes on, a step at a time");
        let mut progress: ComposeProgress = serde_json::from_str(&kept).unwrap();
        let answer = s.compose_within("joined/steps", s.as_ref(), &parts, &mut progress, &|| true).unwrap();
        if let Some(meta) = answer {
            break meta;
        }
        assert!(s.head("joined/steps").unwrap().is_none(), "nothing is visible before the copy is whole");
        kept = serde_json::to_string(&progress).unwrap();
    };
    assert_eq!(meta.size, want.len() as u64);
    assert!(read_all(s.as_ref(), "joined/steps") == want, "eleven parts joined in order across {calls} calls");
    calls
}

/// `compose` joins parts, small and large, into one object, in order; the parts stay.
pub fn compose_joins_parts(make: &Make) {
    let s = make();
    let large: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    s.put("parts/1", &large).unwrap();
    s.put("parts/2", &large[..6 * 1024 * 1024 - 7]).unwrap();
    s.put("parts/3", b"the end").unwrap();
    let parts: Vec<String> = ["parts/1", "parts/2", "parts/3"].map(String::from).to_vec();
    let meta = s.compose("joined/large", s.as_ref(), &parts).unwrap();
    let mut want = large.clone();
    want.extend_from_slice(&large[..6 * 1024 * 1024 - 7]);
    want.extend_from_slice(b"the end");
    assert_eq!(meta.size, want.len() as u64);
    assert!(read_all(s.as_ref(), "joined/large") == want, "large parts joined in order");
    // Parts too small for a server-side part copy are joined all the same.
    s.put("small/1", b"one ").unwrap();
    s.put("small/2", b"two").unwrap();
    s.compose("joined/small", s.as_ref(), &["small/1".into(), "small/2".into()]).unwrap();
    assert_eq!(read_all(s.as_ref(), "joined/small"), b"one two");
    s.compose("joined/one", s.as_ref(), &["small/2".into()]).unwrap();
    assert_eq!(read_all(s.as_ref(), "joined/one"), b"two", "a single part is copied");
    assert!(s.head("parts/1").unwrap().is_some(), "the parts stay");
    assert!(matches!(s.compose("joined/missing", s.as_ref(), &["nope".into()]), Err(PortError::NotFound(_))));
}
