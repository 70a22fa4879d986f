//! gzip on every core, as pigz does it: the input is cut into chunks, each compressed as a
//! whole gzip member on a worker thread, and the members are written in order. Concatenated
//! members are one valid gzip stream (RFC 1952 §2.2; gzip, tar, Python and every reader
//! Vellum uses take them), which the package parts already rely on. A chunk starts with an
//! empty window, which costs a fraction of a percent at this chunk size.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::write::GzEncoder;
use flate2::Compression;

/// Bytes of input per gzip member.
pub const CHUNK: usize = 1 << 20;

/// The number of workers a package uses: one per core.
pub fn threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

type Job = (Vec<u8>, Sender<io::Result<Vec<u8>>>);

pub struct ParallelGzip<W: Write> {
    inner: Option<W>,
    buffer: Vec<u8>,
    /// Members being compressed, oldest first; written out in this order.
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_pending: usize,
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    /// Whether any member was written: an empty input still makes one (empty) member.
    wrote: bool,
}

impl<W: Write> ParallelGzip<W> {
    /// `threads` workers (at least one); memory stays near `3 × threads × CHUNK`.
    pub fn new(inner: W, level: u32, threads: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let level = Compression::new(level.min(9));
        let workers = (0..threads)
            .map(|n| {
                let queue = queue.clone();
                std::thread::Builder::new()
                    .name(format!("gzip-{n}"))
                    .spawn(move || loop {
                        let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok((input, reply)) = job else { return };
                        let _ = reply.send(compress(&input, level));
                    })
                    .expect("spawn a gzip worker")
            })
            .collect();
        Self {
            inner: Some(inner),
            buffer: Vec::with_capacity(CHUNK),
            pending: VecDeque::new(),
            max_pending: threads + 1,
            jobs: Some(jobs),
            workers,
            wrote: false,
        }
    }

    fn submit(&mut self) -> io::Result<()> {
        let input = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        let (reply, answer) = mpsc::channel();
        let jobs = self.jobs.as_ref().ok_or_else(|| io::Error::other("the gzip writer is finished"))?;
        jobs.send((input, reply)).map_err(|_| io::Error::other("the gzip workers stopped"))?;
        self.pending.push_back(answer);
        self.wrote = true;
        while self.pending.len() > self.max_pending {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(answer) = self.pending.pop_front() else { return Ok(()) };
        let member = answer.recv().map_err(|_| io::Error::other("a gzip worker stopped"))??;
        self.inner.as_mut().expect("the inner writer is there until finish").write_all(&member)
    }

    /// Compresses what is buffered, writes every member and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buffer.is_empty() || !self.wrote {
            self.submit()?;
        }
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        self.stop_workers();
        let mut inner = self.inner.take().expect("the inner writer is there until finish");
        inner.flush()?;
        Ok(inner)
    }

    fn stop_workers(&mut self) {
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

fn compress(input: &[u8], level: Compression) -> io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(input.len() / 2 + 64), level);
    encoder.write_all(input)?;
    encoder.finish()
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buffer.len();
        let n = room.min(buf.len());
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() == CHUNK {
            self.submit()?;
        }
        Ok(n)
    }

    /// Writes the members already compressed; a partial chunk waits for more input.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for ParallelGzip<W> {
    fn drop(&mut self) {
        self.stop_workers();
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn the_members_decompress_to_the_input_in_order() {
        let input: Vec<u8> = (0..(CHUNK * 5 + 1234)).map(|i| (i * 31 % 251) as u8).collect();
        for threads in [1, 2, 4] {
            let mut gz = ParallelGzip::new(Vec::new(), 1, threads);
            // Uneven writes, across chunk boundaries.
            for piece in input.chunks(777_777) {
                gz.write_all(piece).unwrap();
            }
            let out = gz.finish().unwrap();
            assert!(out.len() < input.len() / 4, "it compresses: {} bytes", out.len());
            assert_eq!(gunzip(&out), input, "{threads} threads");
            // Six members: five whole chunks and the rest.
            let members = out.windows(4).filter(|w| *w == [0x1f, 0x8b, 8, 0]).count();
            assert!(members >= 6, "{members} members");
        }
    }

    #[test]
    fn an_empty_input_is_one_valid_empty_member() {
        let out = ParallelGzip::new(Vec::new(), 6, 2).finish().unwrap();
        assert!(!out.is_empty());
        assert_eq!(gunzip(&out), Vec::<u8>::new());
    }

    #[test]
    fn a_failing_writer_fails_the_write_not_silently() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut gz = ParallelGzip::new(Full, 1, 2);
        let data = vec![7u8; CHUNK * 8];
        let written = gz.write_all(&data).and_then(|_| gz.finish().map(|_| ()));
        assert_eq!(written.unwrap_err().to_string(), "disk full");
    }
}
