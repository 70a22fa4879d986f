//! One copying buffer a thread, reused from file to file.
//!
//! A buffer of 256 KiB is past the allocator's mmap threshold (the `vellum` binary fixes it at
//! 128 KiB), so one allocated a file costs an `mmap`, page faults and an `munmap` — which on a
//! threaded process interrupts every core to flush its TLB. For a tiny file that costs more
//! than reading it: 84,000 `munmap`s at 87 µs each in a 20,000-file ingest (`strace -c`).

use std::cell::RefCell;
use std::io::{self, Read};

/// The buffer's size: large enough that a big file is read in few calls.
pub const SCRATCH_BYTES: usize = 256 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's buffer of `SCRATCH_BYTES` (a fresh one when `f` runs inside
/// another call of this on the same thread). What `f` leaves in it is not cleared.
pub fn with_scratch<T>(f: impl FnOnce(&mut [u8]) -> T) -> T {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < SCRATCH_BYTES {
                buf.resize(SCRATCH_BYTES, 0);
            }
            f(&mut buf[..SCRATCH_BYTES])
        }
        Err(_) => f(&mut vec![0u8; SCRATCH_BYTES]),
    })
}

/// Reads `reader` to its end through this thread's buffer, handing each chunk to `sink`;
/// returns the bytes read. A read error goes through `read_error`, so the caller says whose
/// fault it was (the package's, the store's).
pub fn pump<E>(
    reader: &mut dyn Read,
    mut sink: impl FnMut(&[u8]) -> Result<(), E>,
    read_error: impl Fn(io::Error) -> E,
) -> Result<u64, E> {
    with_scratch(|buf| {
        let mut total = 0u64;
        loop {
            let n = match reader.read(buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(e)),
            };
            sink(&buf[..n])?;
            total += n as u64;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_is_kept_between_calls_and_a_nested_call_gets_its_own() {
        let first = with_scratch(|b| {
            b[0] = 7;
            b.as_ptr() as usize
        });
        let (again, seen, nested) = with_scratch(|b| {
            let nested = with_scratch(|inner| {
                assert_eq!(inner.len(), SCRATCH_BYTES);
                inner.as_ptr() as usize
            });
            (b.as_ptr() as usize, b[0], nested)
        });
        assert_eq!((first, seen), (again, 7));
        assert_ne!(nested, again);
    }

    #[test]
    fn pump_hands_on_every_byte_of_a_reader_longer_than_the_buffer() {
        let data: Vec<u8> = (0..SCRATCH_BYTES * 2 + 17).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        let sink = |chunk: &[u8]| -> io::Result<()> {
            out.extend_from_slice(chunk);
            Ok(())
        };
        let n = pump(&mut &data[..], sink, |e| e).unwrap();
        assert_eq!((n, out), (data.len() as u64, data));
    }
}
