//! WAV (RIFF, RF64) and AIFF (AIFF, AIFC) read as a player reads their chunks: the container's
//! declared size within the file, every chunk within the container, the format chunk (`fmt `,
//! `COMM`) coherent and before the sound, and the sound (`data`, `SSND`) holding what the
//! format chunk says it holds. Samples are not decoded.

use std::io::{Read, Seek, SeekFrom};

use crate::analysis::verdict::Verdict;

/// Whether the first bytes are an AIFF or AIFF-C container.
pub fn is_aiff(head: &[u8]) -> bool {
    head.len() >= 12 && &head[..4] == b"FORM" && (&head[8..12] == b"AIFF" || &head[8..12] == b"AIFC")
}

const MAX_CHUNKS: usize = 1 << 16;

type Fail = String;

fn read_at<R: Read + Seek>(r: &mut R, at: u64, len: usize) -> Result<Vec<u8>, Fail> {
    let mut buf = vec![0; len];
    r.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
    r.read_exact(&mut buf).map_err(|_| format!("it ends inside the chunk header at byte {at}"))?;
    Ok(buf)
}

/// The chunks from `at` to `end`: (id, where the data starts, its declared size).
fn chunks<R: Read + Seek>(
    r: &mut R,
    mut at: u64,
    end: u64,
    big_endian: bool,
) -> Result<Vec<([u8; 4], u64, u64)>, Fail> {
    let mut out = Vec::new();
    while at + 8 <= end {
        let h = read_at(r, at, 8)?;
        let id = [h[0], h[1], h[2], h[3]];
        let size = if big_endian {
            u32::from_be_bytes([h[4], h[5], h[6], h[7]])
        } else {
            u32::from_le_bytes([h[4], h[5], h[6], h[7]])
        } as u64;
        out.push((id, at + 8, size));
        if out.len() > MAX_CHUNKS {
            return Err(format!("more than {MAX_CHUNKS} chunks"));
        }
        at += 8 + size + (size & 1);
    }
    Ok(out)
}

/// A chunk (its data at `at`, `len` bytes) must end inside its container, which ends at `end`.
fn inside(id: &[u8; 4], at: u64, len: u64, end: u64, container: &str) -> Result<(), Fail> {
    if at + len > end {
        return Err(format!(
            "its '{}' chunk at byte {} declares {len} bytes, past the {container}'s end ({end})",
            String::from_utf8_lossy(id),
            at - 8
        ));
    }
    Ok(())
}

/// What the chunks said, as a verdict: the samples themselves are never decoded.
fn verdict(found: Result<String, Fail>) -> Verdict {
    found.map_or_else(Verdict::Invalid, |said| Verdict::Limited(format!("{said}; samples not decoded")))
}

pub fn check_wav<R: Read + Seek>(mut r: R, size: u64) -> Verdict {
    verdict(wav(&mut r, size))
}

fn wav<R: Read + Seek>(r: &mut R, size: u64) -> Result<String, Fail> {
    let head = read_at(r, 0, 12).map_err(|_| "it is shorter than a RIFF header".to_string())?;
    let rf64 = &head[..4] == b"RF64";
    let mut declared = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as u64 + 8;
    let mut list = chunks(r, 12, size, false)?;
    let mut data_size_64 = None;
    if rf64 {
        let Some((_, at, len)) = list.first().copied().filter(|(id, _, _)| id == b"ds64") else {
            return Err("an RF64 file without its ds64 chunk first".into());
        };
        if len < 16 {
            return Err("its ds64 chunk is too short".into());
        }
        let d = read_at(r, at, 16)?;
        declared = u64::from_le_bytes(d[..8].try_into().expect("8 bytes")) + 8;
        data_size_64 = Some(u64::from_le_bytes(d[8..16].try_into().expect("8 bytes")));
    }
    if declared > size {
        return Err(format!("its RIFF header declares {declared} bytes, but the file has {size}: it is cut short"));
    }
    list.retain(|(_, at, _)| *at <= declared);
    let mut format: Option<(u16, u16, u32, u32, u16, u16)> = None;
    let mut data = None;
    for &(id, at, len) in &list {
        let len = match (&id, data_size_64) {
            (b"data", Some(real)) if len == 0xFFFF_FFFF => real,
            _ => len,
        };
        inside(&id, at, len, declared, "RIFF")?;
        match &id {
            b"fmt " => {
                if len < 16 {
                    return Err(format!("its fmt chunk is {len} bytes, shorter than 16"));
                }
                let f = read_at(r, at, 16)?;
                let u16le = |i: usize| u16::from_le_bytes([f[i], f[i + 1]]);
                let u32le = |i: usize| u32::from_le_bytes([f[i], f[i + 1], f[i + 2], f[i + 3]]);
                format = Some((u16le(0), u16le(2), u32le(4), u32le(8), u16le(12), u16le(14)));
            }
            b"data" => {
                if format.is_none() {
                    return Err("its data chunk comes before its fmt chunk".into());
                }
                data = Some(len);
                break;
            }
            _ => {}
        }
    }
    let Some((tag, channels, rate, byte_rate, align, bits)) = format else {
        return Err("it has no fmt chunk".into());
    };
    let Some(data) = data else { return Err("it has no data chunk".into()) };
    if channels == 0 || rate == 0 || align == 0 {
        return Err(format!("its fmt chunk says {channels} channels at {rate} Hz, {align} bytes a frame"));
    }
    // PCM and IEEE float: the frame and byte rate follow from the channels and the depth.
    if tag == 1 || tag == 3 {
        let want = channels as u32 * (bits as u32).div_ceil(8);
        if bits == 0 || align as u32 != want || byte_rate != rate.saturating_mul(want) {
            return Err(format!(
                "its fmt chunk does not add up: {channels} channels of {bits} bits make {want} bytes a frame, \
                 it says {align} ({byte_rate} bytes a second at {rate} Hz)"
            ));
        }
        if data % align as u64 != 0 {
            return Err(format!("its data chunk ({data} bytes) ends inside a frame of {align} bytes"));
        }
    }
    Ok(format!("the RIFF's size, its {} chunks, the fmt chunk and the data chunk ({data} bytes) agree", list.len()))
}

pub fn check_aiff<R: Read + Seek>(mut r: R, size: u64) -> Verdict {
    verdict(aiff(&mut r, size))
}

fn aiff<R: Read + Seek>(r: &mut R, size: u64) -> Result<String, Fail> {
    let head = read_at(r, 0, 12).map_err(|_| "it is shorter than a FORM header".to_string())?;
    let compressed = &head[8..12] == b"AIFC";
    let declared = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as u64 + 8;
    if declared > size {
        return Err(format!("its FORM header declares {declared} bytes, but the file has {size}: it is cut short"));
    }
    let list = chunks(r, 12, declared, true)?;
    let mut comm = None;
    let mut ssnd = None;
    for &(id, at, len) in &list {
        inside(&id, at, len, declared, "FORM")?;
        match &id {
            b"COMM" => {
                if len < 18 {
                    return Err(format!("its COMM chunk is {len} bytes, shorter than 18"));
                }
                let c = read_at(r, at, 22.min(len as usize))?;
                let channels = u16::from_be_bytes([c[0], c[1]]);
                let frames = u32::from_be_bytes([c[2], c[3], c[4], c[5]]) as u64;
                let bits = u16::from_be_bytes([c[6], c[7]]);
                let codec = c.get(18..22).map(|t| [t[0], t[1], t[2], t[3]]);
                comm = Some((channels, frames, bits, codec));
            }
            b"SSND" => {
                if len < 8 {
                    return Err("its SSND chunk is shorter than its header".into());
                }
                let offset = u32::from_be_bytes(read_at(r, at, 4)?.try_into().expect("4 bytes")) as u64;
                ssnd = Some(len.saturating_sub(8 + offset));
            }
            _ => {}
        }
    }
    let Some((channels, frames, bits, codec)) = comm else { return Err("it has no COMM chunk".into()) };
    if channels == 0 || bits == 0 || bits > 32 {
        return Err(format!("its COMM chunk says {channels} channels of {bits} bits"));
    }
    let uncompressed = !compressed || matches!(&codec, Some(c) if c == b"NONE" || c == b"twos" || c == b"sowt");
    let sound = match (ssnd, frames) {
        (Some(bytes), _) => bytes,
        (None, 0) => 0,
        (None, _) => return Err(format!("its COMM chunk counts {frames} frames but there is no SSND chunk")),
    };
    if uncompressed {
        let need = frames * channels as u64 * (bits as u64).div_ceil(8);
        if sound < need {
            return Err(format!("its SSND chunk holds {sound} bytes of sound; {frames} frames need {need}"));
        }
    }
    Ok(format!("the FORM's size, its {} chunks, COMM and SSND agree", list.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav_of(channels: u16, bits: u16, frames: u32) -> Vec<u8> {
        let align = channels * bits / 8;
        let data = frames * align as u32;
        let mut w = Vec::new();
        w.extend_from_slice(b"RIFF");
        w.extend_from_slice(&(36 + data).to_le_bytes());
        w.extend_from_slice(b"WAVEfmt ");
        w.extend_from_slice(&16u32.to_le_bytes());
        w.extend_from_slice(&1u16.to_le_bytes());
        w.extend_from_slice(&channels.to_le_bytes());
        w.extend_from_slice(&8000u32.to_le_bytes());
        w.extend_from_slice(&(8000 * align as u32).to_le_bytes());
        w.extend_from_slice(&align.to_le_bytes());
        w.extend_from_slice(&bits.to_le_bytes());
        w.extend_from_slice(b"data");
        w.extend_from_slice(&data.to_le_bytes());
        w.resize(w.len() + data as usize, 0);
        w
    }

    fn judge_wav(bytes: &[u8]) -> Verdict {
        check_wav(std::io::Cursor::new(bytes), bytes.len() as u64)
    }

    #[test]
    fn a_wav_whose_chunks_agree_is_not_failed_and_a_cut_or_incoherent_one_is() {
        let good = wav_of(2, 16, 100);
        assert!(matches!(judge_wav(&good), Verdict::Limited(_)), "{:?}", judge_wav(&good));
        assert!(matches!(judge_wav(&good[..good.len() - 10]), Verdict::Invalid(w) if w.contains("cut short")));
        let mut bad_align = good.clone();
        bad_align[32] = 3;
        assert!(matches!(judge_wav(&bad_align), Verdict::Invalid(w) if w.contains("does not add up")));
        let mut long_data = good.clone();
        long_data[40..44].copy_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(judge_wav(&long_data), Verdict::Invalid(w) if w.contains("past the RIFF's end")));
        let no_fmt: Vec<u8> = [&good[..12], &good[36..]].concat();
        let mut no_fmt = no_fmt;
        let riff = (no_fmt.len() - 8) as u32;
        no_fmt[4..8].copy_from_slice(&riff.to_le_bytes());
        assert!(matches!(judge_wav(&no_fmt), Verdict::Invalid(w) if w.contains("before its fmt chunk")));
    }

    #[test]
    fn an_aiff_whose_sound_is_shorter_than_its_frames_fails() {
        let frames = 50u32;
        let mut comm = Vec::new();
        comm.extend_from_slice(&1u16.to_be_bytes());
        comm.extend_from_slice(&frames.to_be_bytes());
        comm.extend_from_slice(&16u16.to_be_bytes());
        comm.extend_from_slice(&[0x40, 0x0B, 0xFA, 0, 0, 0, 0, 0, 0, 0]);
        let sound = vec![0u8; frames as usize * 2];
        let make = |sound: &[u8]| {
            let mut body = b"AIFFCOMM".to_vec();
            body.extend_from_slice(&(comm.len() as u32).to_be_bytes());
            body.extend_from_slice(&comm);
            body.extend_from_slice(b"SSND");
            body.extend_from_slice(&(8 + sound.len() as u32).to_be_bytes());
            body.extend_from_slice(&[0; 8]);
            body.extend_from_slice(sound);
            let mut f = b"FORM".to_vec();
            f.extend_from_slice(&(body.len() as u32).to_be_bytes());
            f.extend_from_slice(&body);
            f
        };
        let good = make(&sound);
        assert!(is_aiff(&good));
        assert!(matches!(check_aiff(std::io::Cursor::new(&good), good.len() as u64), Verdict::Limited(_)));
        let short = make(&sound[..20]);
        let v = check_aiff(std::io::Cursor::new(&short), short.len() as u64);
        assert!(matches!(&v, Verdict::Invalid(w) if w.contains("frames need")), "{v:?}");
        let cut = &good[..good.len() - 30];
        assert!(
            matches!(check_aiff(std::io::Cursor::new(cut), cut.len() as u64), Verdict::Invalid(w) if w.contains("cut short"))
        );
    }
}
