//! Names made safe and portable, as Archivematica's "Sanitize object's file and directory
//! names" does: transliterated to ASCII, then every character outside `A-Za-z0-9-_.()`
//! replaced by `_`; on top of that, names Windows cannot hold (reserved device names,
//! trailing dots) are fixed. Names that collide once sanitized get `_1`, `_2`, … before
//! their extension; a name that needed no change always keeps it.

use std::collections::{BTreeMap, BTreeSet};

const REPLACEMENT: char = '_';

/// The longest name a file system holds (ext4, APFS and NTFS: 255 bytes or units); a
/// Windows name of 255 UTF-16 characters may be up to 765 bytes once in UTF-8.
pub const MAX_NAME_BYTES: usize = 255;

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')')
}

const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9", "LPT1", "LPT2",
    "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// A Windows device name, bare or with an extension (`con`, `NUL.txt`).
fn is_reserved(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name);
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem))
}

/// One path component, sanitized. Never empty, never `.` or `..`.
pub fn sanitize_component(name: &str) -> String {
    let transliterated = deunicode::deunicode_with_tofu(name, "_");
    let mut out: String = transliterated.chars().map(|c| if allowed(c) { c } else { REPLACEMENT }).collect();
    // Windows drops trailing dots; `.` and `..` are no names at all.
    while out.ends_with('.') {
        out.pop();
        out.push(REPLACEMENT);
    }
    if out.is_empty() {
        out.push(REPLACEMENT);
    }
    if is_reserved(&out) {
        out.insert(0, REPLACEMENT);
    }
    out
}

/// Whether a component is already as sanitizing would leave it.
pub fn is_safe_component(name: &str) -> bool {
    sanitize_component(name) == name
}

/// `title_n.ext`, splitting as Python's `os.path.splitext` does (a leading dot is no
/// extension).
fn numbered(name: &str, n: u32) -> String {
    match name.rfind('.') {
        Some(i) if name[..i].chars().any(|c| c != '.') => {
            format!("{}{REPLACEMENT}{n}{}", &name[..i], &name[i..])
        }
        _ => format!("{name}{REPLACEMENT}{n}"),
    }
}

#[derive(Default)]
struct Node {
    children: BTreeMap<String, Node>,
    /// Indexes of the input paths that end at this node.
    ends_here: Vec<usize>,
}

/// Why a set of paths cannot be laid out as files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// `path` is a file and also the folder of other entries.
    FileIsAlsoFolder(String),
    /// These paths are longer than the limit even with every name shortened.
    TooLong(Vec<String>),
}

/// A sanitized name cut to fit `max` bytes, deterministically: the start of the name, a
/// short digest of the original name (so two long names that start alike stay apart) and
/// the extension, which says what the file is.
pub fn shortened(sanitized: &str, original: &str, max: usize) -> String {
    use sha2::Digest;
    let digest = hex::encode(&sha2::Sha256::digest(original.as_bytes())[..4]);
    let ext = match sanitized.rfind('.') {
        Some(i) if i > 0 && sanitized.len() - i <= 16 => &sanitized[i..],
        _ => "",
    };
    let stem = &sanitized[..sanitized.len() - ext.len()];
    // Room is left for a collision number (`_12`) after the digest.
    let room = max.saturating_sub(ext.len() + digest.len() + 1 + 8).max(1);
    // Sanitized names are ASCII, so any byte is a character boundary.
    format!("{}{REPLACEMENT}{digest}{ext}", &stem[..room.min(stem.len())])
}

/// Whether a name's change was a shortening (rather than only characters replaced).
pub fn was_shortened(original: &str) -> bool {
    original.split('/').any(|part| sanitize_component(part).len() > MAX_NAME_BYTES)
}

/// Sanitized paths for a set of distinct `/`-separated relative paths, in the same order.
/// The same folder always gets the same sanitized name, distinct inputs stay distinct, and
/// the result depends only on the set of paths (not on their order). No name is longer
/// than `max_name` bytes (longer ones are shortened); a path that is still longer than
/// `max_path` is an error.
pub fn plan(paths: &[&str], max_name: usize, max_path: usize) -> Result<Vec<String>, PlanError> {
    let mut root = Node::default();
    for (i, path) in paths.iter().enumerate() {
        let mut node = &mut root;
        for part in path.split('/') {
            node = node.children.entry(part.to_string()).or_default();
        }
        node.ends_here.push(i);
    }
    let mut out = vec![String::new(); paths.len()];
    resolve(&root, &mut out, paths, max_name)?;
    let too_long: Vec<String> =
        paths.iter().zip(&out).filter(|(_, planned)| planned.len() > max_path).map(|(p, _)| p.to_string()).collect();
    if !too_long.is_empty() {
        return Err(PlanError::TooLong(too_long));
    }
    Ok(out)
}

/// Names every node's children, folder by folder, from a stack rather than by recursion: a
/// package may nest folders two thousand deep within POSIX's 4,096 bytes.
fn resolve(root: &Node, out: &mut [String], paths: &[&str], max_name: usize) -> Result<(), PlanError> {
    let mut todo: Vec<(&Node, String)> = vec![(root, String::new())];
    while let Some((node, prefix)) = todo.pop() {
        let mut taken: BTreeSet<String> = BTreeSet::new();
        let mut assigned: BTreeMap<&str, String> = BTreeMap::new();
        for name in node.children.keys() {
            if is_safe_component(name) && name.len() <= max_name {
                taken.insert(name.clone());
                assigned.insert(name, name.clone());
            }
        }
        for name in node.children.keys() {
            if assigned.contains_key(name.as_str()) {
                continue;
            }
            let mut base = sanitize_component(name);
            if base.len() > max_name {
                base = shortened(&base, name, max_name);
            }
            let mut candidate = base.clone();
            let mut n = 1;
            while taken.contains(&candidate) {
                candidate = numbered(&base, n);
                n += 1;
            }
            taken.insert(candidate.clone());
            assigned.insert(name, candidate);
        }
        for (name, child) in &node.children {
            let full = if prefix.is_empty() {
                assigned[name.as_str()].clone()
            } else {
                format!("{prefix}/{}", assigned[name.as_str()])
            };
            if !child.ends_here.is_empty() && !child.children.is_empty() {
                return Err(PlanError::FileIsAlsoFolder(paths[child.ends_here[0]].to_string()));
            }
            for &i in &child.ends_here {
                out[i] = full.clone();
            }
            todo.push((child, full));
        }
    }
    Ok(())
}

impl Drop for Node {
    /// Taken apart from a stack, not by the recursion a derived drop would make.
    fn drop(&mut self) {
        let mut todo: Vec<Node> = std::mem::take(&mut self.children).into_values().collect();
        while let Some(mut node) = todo.pop() {
            todo.extend(std::mem::take(&mut node.children).into_values());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_as_archivematica_cleans_them() {
        assert_eq!(sanitize_component("catalogue entry (draft).html"), "catalogue_entry_(draft).html");
        assert_eq!(sanitize_component("Café.txt"), "Cafe.txt");
        assert_eq!(sanitize_component("Cafe\u{301}.txt"), "Cafe.txt", "decomposed accents too");
        assert_eq!(sanitize_component("résumé?.doc"), "resume_.doc");
        assert_eq!(sanitize_component("CON"), "_CON");
        assert_eq!(sanitize_component("nul.txt"), "_nul.txt");
        assert_eq!(sanitize_component("trailing."), "trailing_");
        assert_eq!(sanitize_component(""), "_");
        assert_eq!(sanitize_component("ok-name_1.(2).txt"), "ok-name_1.(2).txt");
    }

    #[test]
    fn collisions_are_numbered_and_unchanged_names_keep_theirs() {
        let paths = ["objects/a b.txt", "objects/a_b.txt", "objects/a?b.txt", "objects/Ça/x", "objects/Ca/x"];
        let planned = plan(&paths, MAX_NAME_BYTES, 1000).unwrap();
        assert_eq!(planned[1], "objects/a_b.txt", "needed no change: keeps its name");
        assert_eq!(planned[0], "objects/a_b_1.txt");
        assert_eq!(planned[2], "objects/a_b_2.txt");
        assert_eq!(planned[4], "objects/Ca/x");
        assert_eq!(planned[3], "objects/Ca_1/x", "a folder is renamed once for all its entries");
        assert_eq!(numbered(".hidden", 1), ".hidden_1");
        assert_eq!(
            plan(&["objects/a", "objects/a/b"], MAX_NAME_BYTES, 1000),
            Err(PlanError::FileIsAlsoFolder("objects/a".into()))
        );
    }

    #[test]
    fn long_names_are_shortened_keeping_their_extension() {
        let long = format!("objects/{}.docx", "é".repeat(300));
        let other = format!("objects/{}.docx", "é".repeat(299));
        let planned = plan(&[&long, &other], MAX_NAME_BYTES, 1000).unwrap();
        for p in &planned {
            let name = p.rsplit('/').next().unwrap();
            assert!(name.len() <= MAX_NAME_BYTES && name.ends_with(".docx"), "{name}");
        }
        assert_ne!(planned[0], planned[1], "the digest keeps names that start alike apart");
        assert!(was_shortened(&long) && !was_shortened("objects/short.txt"));
        let deep = format!("objects/{}", ["folder"; 200].join("/"));
        assert_eq!(plan(&[&deep], MAX_NAME_BYTES, 1000), Err(PlanError::TooLong(vec![deep.clone()])));
    }

    fn component() -> impl Strategy<Value = String> {
        // Awkward on purpose: spaces, dots, reserved names, scripts and controls.
        prop_oneof![
            "[a-zA-Z0-9 ._()-]{1,12}",
            "\\PC{1,10}",
            Just("CON".to_string()),
            Just("a b".to_string()),
            Just("a_b".to_string()),
            Just("x.".to_string()),
        ]
        .prop_filter("not a relative step", |s| s != "." && s != ".." && !s.contains('/') && !s.is_empty())
    }

    proptest! {
        #[test]
        fn sanitized_names_are_always_safe(name in "\\PC{0,40}") {
            let s = sanitize_component(&name);
            prop_assert!(!s.is_empty() && s != "." && s != "..");
            prop_assert!(s.chars().all(allowed), "{s:?}");
            prop_assert!(!s.ends_with('.'));
            prop_assert!(!is_reserved(&s));
            prop_assert!(is_safe_component(&s), "sanitizing is idempotent: {s:?}");
        }

        #[test]
        fn distinct_paths_stay_distinct(paths in proptest::collection::btree_set(
            proptest::collection::vec(component(), 1..4).prop_map(|v| v.join("/")), 1..40)) {
            let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
            match plan(&paths, MAX_NAME_BYTES, 10_000) {
                Err(PlanError::FileIsAlsoFolder(p)) => {
                    let folder = format!("{p}/");
                    prop_assert!(paths.iter().any(|q| q.starts_with(&folder)));
                }
                Err(PlanError::TooLong(p)) => prop_assert!(false, "no path here is too long: {:?}", p),
                Ok(planned) => {
                    let unique: BTreeSet<&String> = planned.iter().collect();
                    prop_assert_eq!(unique.len(), planned.len(), "{:?} -> {:?}", paths, planned);
                    for (p, s) in paths.iter().zip(&planned) {
                        prop_assert_eq!(p.split('/').count(), s.split('/').count());
                        prop_assert!(s.split('/').all(is_safe_component), "{s:?}");
                    }
                    // The same folder maps to the same sanitized folder everywhere.
                    let mut folders: BTreeMap<String, String> = BTreeMap::new();
                    for (p, s) in paths.iter().zip(&planned) {
                        if let (Some((pd, _)), Some((sd, _))) = (p.rsplit_once('/'), s.rsplit_once('/')) {
                            let prior = folders.insert(pd.to_string(), sd.to_string());
                            prop_assert!(prior.is_none_or(|x| x == sd));
                        }
                    }
                    let mut reversed = paths.clone();
                    reversed.reverse();
                    let mut again = plan(&reversed, MAX_NAME_BYTES, 10_000).unwrap();
                    again.reverse();
                    prop_assert_eq!(again, planned, "independent of order");
                }
            }
        }
    }
}
