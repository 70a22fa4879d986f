//! Sparse files in PAX tars, as GNU tar writes them with `--sparse --format=posix`: the
//! member carries only the file's data regions, and PAX records (versions 0.0 and 0.1) or a
//! map at the start of its data (version 1.0) say where they go. Read naively, such a
//! member is the map and the regions under a made-up name (`GNUSparseFile.<pid>/…`); here
//! it is expanded to the file's real name and bytes, holes read as zeros.

use std::collections::VecDeque;
use std::io::{self, Read};

/// What a PAX sparse member's records say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaxSparse {
    /// The file's real name (`GNU.sparse.name`), where the records give it.
    pub name: Option<Vec<u8>>,
    /// The file's real size.
    pub real_size: u64,
    /// The data regions (offset, length), when the records hold them (0.0, 0.1); for 1.0
    /// they are at the start of the member's data.
    pub map: Option<Vec<(u64, u64)>>,
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

fn number(key: &str, value: &str) -> io::Result<u64> {
    value.trim().parse().map_err(|_| invalid(format!("the sparse record {key}={value:?} is not a number")))
}

/// The member's sparse records, if it is a PAX sparse member.
pub fn pax_sparse<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Option<PaxSparse>> {
    let Some(extensions) = entry.pax_extensions()? else { return Ok(None) };
    let mut name = None;
    let mut size = None;
    let mut realsize = None;
    let mut major = None;
    let mut offsets = Vec::new();
    let mut lengths = Vec::new();
    let mut map = None;
    for ext in extensions {
        let ext = ext?;
        let Ok(key) = ext.key() else { continue };
        if !key.starts_with("GNU.sparse.") {
            continue;
        }
        let value = String::from_utf8_lossy(ext.value_bytes()).into_owned();
        match key {
            "GNU.sparse.name" => name = Some(ext.value_bytes().to_vec()),
            "GNU.sparse.size" => size = Some(number(key, &value)?),
            "GNU.sparse.realsize" => realsize = Some(number(key, &value)?),
            "GNU.sparse.major" => major = Some(number(key, &value)?),
            "GNU.sparse.offset" => offsets.push(number(key, &value)?),
            "GNU.sparse.numbytes" => lengths.push(number(key, &value)?),
            "GNU.sparse.map" => {
                let numbers = value
                    .split(',')
                    .filter(|v| !v.is_empty())
                    .map(|v| number(key, v))
                    .collect::<io::Result<Vec<_>>>()?;
                if !numbers.len().is_multiple_of(2) {
                    return Err(invalid("the sparse map GNU.sparse.map has an odd count of numbers".into()));
                }
                map = Some(numbers.chunks(2).map(|c| (c[0], c[1])).collect());
            }
            _ => {}
        }
    }
    if major == Some(1) {
        let real_size = realsize.ok_or_else(|| invalid("a sparse member (1.0) has no GNU.sparse.realsize".into()))?;
        return Ok(Some(PaxSparse { name, real_size, map: None }));
    }
    let Some(real_size) = size.or(realsize) else {
        return Ok(None);
    };
    if map.is_none() {
        if offsets.len() != lengths.len() {
            return Err(invalid("the sparse records GNU.sparse.offset and GNU.sparse.numbytes do not pair up".into()));
        }
        map = Some(offsets.into_iter().zip(lengths).collect());
    }
    Ok(Some(PaxSparse { name, real_size, map }))
}

/// Reads the map a 1.0 member keeps at the start of its data: decimal numbers one per line
/// (the count, then offset and length pairs), padded to a 512-byte block.
fn read_map_in_data(data: &mut dyn Read) -> io::Result<Vec<(u64, u64)>> {
    let mut consumed = 0u64;
    let mut line = || -> io::Result<u64> {
        let mut text = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            data.read_exact(&mut byte)?;
            consumed += 1;
            if byte[0] == b'\n' {
                break;
            }
            if text.len() > 20 {
                return Err(invalid("the sparse map at the start of the member is not a list of numbers".into()));
            }
            text.push(byte[0]);
        }
        number("map", &String::from_utf8_lossy(&text))
    };
    let count = line()?;
    let mut map = Vec::new();
    for _ in 0..count {
        let offset = line()?;
        let length = line()?;
        map.push((offset, length));
    }
    let pad = (512 - consumed % 512) % 512;
    io::copy(&mut data.take(pad), &mut io::sink())?;
    Ok(map)
}

/// The file's bytes: the regions from the member's data, zeros in between.
pub struct SparseReader<R> {
    inner: R,
    regions: VecDeque<(u64, u64)>,
    pos: u64,
    size: u64,
}

impl<R: Read> SparseReader<R> {
    /// Expands a member whose sparse records are `sparse`, reading its data from `inner`.
    pub fn new(mut inner: R, sparse: &PaxSparse) -> io::Result<Self> {
        let map = match &sparse.map {
            Some(m) => m.clone(),
            None => read_map_in_data(&mut inner)?,
        };
        let mut end = 0u64;
        for &(offset, length) in &map {
            let stop = offset.checked_add(length).ok_or_else(|| invalid("a sparse region overflows".into()))?;
            if offset < end || stop > sparse.real_size {
                return Err(invalid("the sparse map's regions overlap or run past the file's size".into()));
            }
            end = stop;
        }
        Ok(Self { inner, regions: map.into_iter().filter(|r| r.1 > 0).collect(), pos: 0, size: sparse.real_size })
    }
}

impl<R: Read> Read for SparseReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() || self.pos >= self.size {
            return Ok(0);
        }
        let (n, from_data) = match self.regions.front() {
            Some(&(offset, _)) if self.pos < offset => (((offset - self.pos) as usize).min(out.len()), false),
            Some(&(offset, length)) => (((offset + length - self.pos) as usize).min(out.len()), true),
            None => (((self.size - self.pos) as usize).min(out.len()), false),
        };
        let n = if from_data {
            let got = self.inner.read(&mut out[..n])?;
            if got == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the sparse member's data ends early"));
            }
            got
        } else {
            out[..n].fill(0);
            n
        };
        self.pos += n as u64;
        if let Some(&(offset, length)) = self.regions.front() {
            if self.pos >= offset + length {
                self.regions.pop_front();
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_and_holes_make_the_file() {
        let sparse = PaxSparse { name: None, real_size: 10, map: Some(vec![(2, 3), (8, 2)]) };
        let mut out = Vec::new();
        SparseReader::new(&b"abcde"[..], &sparse).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, b"\0\0abc\0\0\0de");
        let mut data = b"2\n0\n1\n4\n0\n".to_vec();
        data.resize(512, 0);
        data.extend_from_slice(b"x");
        let v1 = PaxSparse { name: None, real_size: 6, map: None };
        let mut out = Vec::new();
        SparseReader::new(&data[..], &v1).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, b"x\0\0\0\0\0");
        let overlapping = PaxSparse { name: None, real_size: 10, map: Some(vec![(2, 3), (3, 2)]) };
        assert!(SparseReader::new(&b"abcde"[..], &overlapping).is_err());
        let short = PaxSparse { name: None, real_size: 10, map: Some(vec![(0, 9)]) };
        let mut out = Vec::new();
        assert!(SparseReader::new(&b"abc"[..], &short).unwrap().read_to_end(&mut out).is_err());
    }
}
