//! The object store's contract.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use vellum_core::ports::{ObjectStore, PortError};

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

pub fn awkward_keys(make: &Make) {
    let s = make();
    for k in ["born-digital/A B (1).zip", "x/ünïcödé/文件.txt", "x/.hidden", "x/percent%20.txt"] {
        s.put(k, k.as_bytes()).unwrap();
        assert_eq!(read_all(s.as_ref(), k), k.as_bytes(), "{k}");
    }
    assert_eq!(s.list("x/").unwrap().len(), 3);
}
