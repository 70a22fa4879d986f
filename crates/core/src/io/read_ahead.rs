//! Reading on one core while the reader's consumer works on another: the store stage
//! inflates the stored AIP on one thread while it digests what was inflated on its own,
//! where one thread would do both in turn.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver};

const BLOCK: usize = 1 << 20;
/// Blocks read ahead of the consumer at most: memory stays near `(AHEAD + 2) × BLOCK`.
const AHEAD: usize = 4;

/// Runs `consume` on what `source` reads, with the reading done on a thread of its own.
pub fn with_read_ahead<R, T>(source: R, consume: impl FnOnce(&mut dyn Read) -> T) -> T
where
    R: Read + Send,
{
    std::thread::scope(|scope| {
        let (blocks, receiver) = sync_channel::<io::Result<Vec<u8>>>(AHEAD);
        scope.spawn(move || {
            let mut source = source;
            loop {
                let mut block = vec![0u8; BLOCK];
                let read = read_full(&mut source, &mut block).map(|n| {
                    block.truncate(n);
                    block
                });
                let end = !matches!(&read, Ok(b) if !b.is_empty());
                // The consumer stopped early: nothing more to read for.
                if blocks.send(read).is_err() || end {
                    return;
                }
            }
        });
        let mut reader = Blocks { receiver, current: Vec::new(), at: 0, ended: false };
        consume(&mut reader)
    })
}

/// Fills `buf` as far as the source goes.
fn read_full(source: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

struct Blocks {
    receiver: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
    ended: bool,
}

impl Read for Blocks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            if self.ended {
                return Ok(0);
            }
            match self.receiver.recv() {
                Ok(Ok(block)) if block.is_empty() => self.ended = true,
                Ok(Ok(block)) => {
                    self.current = block;
                    self.at = 0;
                }
                Ok(Err(e)) => {
                    self.ended = true;
                    return Err(e);
                }
                Err(_) => return Err(io::Error::other("the reading thread stopped")),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumer_reads_every_byte_in_order() {
        let data: Vec<u8> = (0..(BLOCK * 3 + 17)).map(|i| (i % 253) as u8).collect();
        let out = with_read_ahead(&data[..], |r| {
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            out
        });
        assert_eq!(out, data);
    }

    #[test]
    fn a_read_error_reaches_the_consumer() {
        struct Broken(usize);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt deflate stream"));
                }
                let n = buf.len().min(self.0);
                self.0 -= n;
                Ok(n)
            }
        }
        let err = with_read_ahead(Broken(BLOCK * 2 + 5), |r| r.read_to_end(&mut Vec::new())).unwrap_err();
        assert_eq!(err.to_string(), "corrupt deflate stream");
    }

    #[test]
    fn a_consumer_that_stops_early_does_not_hang() {
        let data = vec![1u8; BLOCK * (AHEAD + 6)];
        let first = with_read_ahead(&data[..], |r| {
            let mut b = [0u8; 10];
            r.read_exact(&mut b).unwrap();
            b
        });
        assert_eq!(first, [1u8; 10]);
    }
}
