//! Whether some process on this machine still has a file open for writing — a copy under
//! way, however slowly (paused, stopped, throttled). Read from Linux's /proc: each process's
//! open descriptors and their access mode. Elsewhere, or for a writer on another machine
//! (a network share), it says no and the watcher's other rules apply.

use std::path::Path;

/// O_ACCMODE's write bits: O_WRONLY (1) or O_RDWR (2).
const WRITE_MODES: u32 = 0o3;

pub fn open_for_writing(path: &Path) -> bool {
    let Ok(target) = path.canonicalize() else {
        return false;
    };
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return false;
    };
    for process in processes.flatten() {
        let pid = process.file_name();
        if !pid.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(descriptors) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        for fd in descriptors.flatten() {
            if std::fs::read_link(fd.path()).ok().as_deref() != Some(target.as_path()) {
                continue;
            }
            let info = std::fs::read_to_string(process.path().join("fdinfo").join(fd.file_name())).unwrap_or_default();
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
                .unwrap_or(0);
            if flags & WRITE_MODES != 0 {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_open_for_writing_is_seen_and_a_closed_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copying.zip");
        let writer = std::fs::File::create(&path).unwrap();
        assert!(open_for_writing(&path));
        let reader = std::fs::File::open(&path).unwrap();
        drop(writer);
        assert!(!open_for_writing(&path), "open for reading only");
        drop(reader);
        assert!(!open_for_writing(&dir.path().join("absent.zip")));
    }
}
