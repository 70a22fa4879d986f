//! checksum ("Assign checksums and file sizes to objects", "Verify transfer checksums"):
//! every file of a batch is read once, all its digests computed in that one pass, a PREMIS
//! "message digest calculation" event recorded per algorithm, and digests the package
//! supplied (`metadata/checksum.<algorithm>`) verified with a "fixity check".

use crate::ports::FileCatalogue;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use crate::analysis::fixity::{parse_supplied_manifest, supplied_manifest_path, Digests, ALGORITHMS};
use crate::config::profile::PackageKind;
use crate::error::{StageError, StageResult};
use crate::intake::layout::layout_name;
use crate::model::messages::StageMessage;
use crate::model::Stage;
use crate::model::{by_vellum, EventOutcome, EventType, File, FilePatch, FileUse, PremisEvent, Transfer};
use crate::record::keys::{key_of, named_key};
use crate::stages::per_file::{run_batch, FileOutcome};
use crate::stages::{Flow, Microservice, Progress, StageContext};

/// The checksum stage and what it uses beside its `Flow`: the files of its batch.
pub struct Checksum<'a> {
    pub flow: Flow<'a>,
    pub files: &'a dyn FileCatalogue,
}

impl Microservice for Checksum<'_> {
    fn run(&self, msg: &StageMessage, ctx: &StageContext) -> StageResult<Progress> {
        let mut supplied: Option<Supplied> = None;
        run_batch(&self.flow, self.files, msg, STAGE, ctx, |transfer, profile, file| {
            let supplied = match &supplied {
                Some(s) => s,
                None => supplied.insert(load_supplied(self, transfer)?),
            };
            let algorithms: BTreeSet<&str> = profile
                .checksum_algorithms
                .iter()
                .map(String::as_str)
                .chain(supplied.iter().map(|(a, _, _, _)| a.as_str()))
                .collect();
            let algorithms: Vec<&str> = algorithms.into_iter().collect();
            let mut reader = self.flow.working.get(&key_of(file))?;
            let (digests, size) = Digests::for_algorithms(&algorithms)?.of_reader(&mut reader)?;
            if size != file.size {
                return Err(StageError::Failed(format!(
                    "{} has {size} bytes in the working area but {} were extracted: the working copy was changed during processing",
                    file.original_path, file.size
                )));
            }
            let mut out =
                FileOutcome { stdout: digests.get("sha256").cloned().unwrap_or_default(), ..Default::default() };
            for (algorithm, digest) in &digests {
                out.events.push(event(
                    self,
                    file,
                    EventType::MessageDigestCalculation,
                    &format!("algorithm=\"{algorithm}\""),
                    EventOutcome::None,
                    digest.clone(),
                    algorithm,
                ));
            }
            if file.file_use != FileUse::SubmissionDocumentation {
                verify_supplied(self, (transfer, profile.kind), file, &digests, supplied, &mut out);
            }
            out.patch = Some(FilePatch { uuid: file.uuid, checksums: digests, size: Some(size), ..Default::default() });
            Ok(out)
        })
    }
}

const STAGE: Stage = Stage::Checksum;

/// Digests the package supplied: (algorithm, where they came from, whether it is a bag's
/// manifest (naming files as the bag does, `data/…`), path → digest).
type Supplied = Vec<(String, String, bool, BTreeMap<String, String>)>;

fn read_text(p: &Checksum<'_>, key: &str) -> StageResult<Option<String>> {
    if p.flow.working.head(key)?.is_none() {
        return Ok(None);
    }
    let mut text = String::new();
    p.flow.working.get(key)?.read_to_string(&mut text)?;
    Ok(Some(text))
}

/// `metadata/checksum.<algorithm>` files, and a bag package's `manifest-<algorithm>.txt`.
fn load_supplied(p: &Checksum<'_>, transfer: &Transfer) -> StageResult<Supplied> {
    let mut out = Supplied::new();
    for a in ALGORITHMS {
        let name = supplied_manifest_path(a);
        if let Some(text) = read_text(p, &named_key(transfer.id, &name))? {
            let parsed = parse_supplied_manifest(&text)
                .map_err(|e| StageError::Failed(format!("{name} cannot be read: {e}")))?;
            out.push((a.to_string(), name, false, parsed));
        }
        let bag_manifest = format!("manifest-{a}.txt");
        if let Some(text) = read_text(p, &named_key(transfer.id, &crate::intake::rules::bag_tag_path(&bag_manifest)))? {
            let parsed = crate::record::bagit::parse_manifest(&text)
                .map_err(|e| StageError::Failed(format!("the bag's {bag_manifest} cannot be read: {e}")))?;
            out.push((a.to_string(), format!("the bag's {bag_manifest}"), true, parsed));
        }
    }
    Ok(out)
}

fn event(
    p: &Checksum<'_>,
    file: &File,
    kind: EventType,
    detail: &str,
    outcome: EventOutcome,
    outcome_detail: String,
    algorithm: &str,
) -> PremisEvent {
    let mut e = PremisEvent::new(
        file.transfer_id,
        Some(file.uuid),
        kind,
        p.flow.clock.now(),
        format!("{}; {detail}", by_vellum()),
        outcome,
        outcome_detail,
        p.flow.agents(),
    );
    // One event per algorithm: the id names it, so a redelivery writes the same rows.
    e.uuid = crate::model::derived_id(file.uuid, &format!("event/{kind}/{algorithm}"));
    e
}

/// Compares the digests just computed with those the package supplied for this file.
fn verify_supplied(
    p: &Checksum<'_>,
    (transfer, kind): (&Transfer, PackageKind),
    file: &File,
    digests: &BTreeMap<String, String>,
    supplied: &Supplied,
    out: &mut FileOutcome,
) {
    let ids = &transfer.identifiers;
    for (algorithm, source, bag_payload, manifest) in supplied {
        let name = layout_name(kind, ids.wrapping_folder.as_deref(), &file.original_path, *bag_payload);
        let Some(want) = manifest.get(&name) else { continue };
        let got = digests.get(algorithm).cloned().unwrap_or_default();
        let pass = *want == got;
        let mut e = event(
            p,
            file,
            EventType::FixityCheck,
            &format!("algorithm=\"{algorithm}\"; checked against {source}"),
            if pass { EventOutcome::Pass } else { EventOutcome::Fail },
            if pass {
                format!("{algorithm} {got} matches")
            } else {
                format!("supplied {algorithm} {want}, computed {got}")
            },
            algorithm,
        );
        e.uuid = crate::model::derived_id(file.uuid, &format!("event/fixity check/{algorithm}/{source}"));
        out.events.push(e);
        if !pass {
            out.exit_code = 1;
            out.fails_transfer = Some(format!(
                "{} does not match the {algorithm} the package supplied: {source} says {want}, the file's is {got}",
                file.original_path
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_digests_in_one_pass() {
        let (d, n) = Digests::for_algorithms(&["md5", "sha1", "sha512"]).unwrap().of_reader(&mut &b"abc"[..]).unwrap();
        assert_eq!(n, 3);
        assert_eq!(d["md5"], "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d["sha1"], "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(d["sha256"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(d["sha512"].starts_with("ddaf35a193617aba"));
        assert!(Digests::for_algorithms(&["crc32"]).is_err());
    }

    #[test]
    fn supplied_manifests_in_both_path_styles() {
        let m = parse_supplied_manifest("ABC  ../objects/a b.txt\ndef *objects/c.txt\n\n").unwrap();
        assert_eq!(m.get("objects/a b.txt").map(String::as_str), Some("abc"));
        assert_eq!(m.get("objects/c.txt").map(String::as_str), Some("def"));
        assert!(parse_supplied_manifest("zz-not-hex  objects/a").is_err());
        // Archivematica's form: the transfer's files as they sit in it (DemoTransfer's).
        let m = parse_supplied_manifest("2121dca88ad7f701d3f3e2d041004a56  beihai.tif\r\n").unwrap();
        assert_eq!(m.get("objects/beihai.tif").map(String::as_str), Some("2121dca88ad7f701d3f3e2d041004a56"));
    }
}
