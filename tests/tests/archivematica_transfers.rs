//! Transfers as Archivematica's users bring them: a standard transfer (files at the top,
//! metadata/, submission documentation, logs/, a processingMCP.xml), and zipped BagIt bags
//! with and without their folder, under their own profiles (`standard/`, `bags/`).

use std::path::Path;
use std::process::Command;

use vellum_core::model::{EventOutcome, FileUse};
use vellum_core::ports::{EventLog, FileCatalogue};
use vellum_tests::{project_python, sha256_hex, tiny_png, Case, Package};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The one folder under `dir` whose name starts with `prefix`.
fn folder_starting(dir: &Path, prefix: &str) -> std::path::PathBuf {
    let found: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    assert_eq!(found.len(), 1, "one {prefix}* in {}: {found:?}", dir.display());
    found[0].clone()
}

/// Archivematica's own choices: normalize for preservation only, no thumbnails, no DIP.
const PROCESSING_MCP: &str = r#"<processingMCP>
  <preconfiguredChoices>
    <!-- Normalize -->
    <preconfiguredChoice>
      <appliesTo>cb8e5706-e73f-472f-ad9b-d1236af8095f</appliesTo>
      <goToChain>89cb80dd-0636-464f-930d-57b61e3928b2</goToChain>
    </preconfiguredChoice>
    <!-- Generate thumbnails -->
    <preconfiguredChoice>
      <appliesTo>498f7a6d-1b8c-431a-aa5d-83f14f3c5e65</appliesTo>
      <goToChain>972fce6c-52c8-4c00-99b9-d6814e377974</goToChain>
    </preconfiguredChoice>
    <!-- Store DIP: do not store -->
    <preconfiguredChoice>
      <appliesTo>5e58066d-e113-4383-b20b-f301ed4d751c</appliesTo>
      <goToChain>4500f34e-f004-4ccf-8720-5c38d0be2254</goToChain>
    </preconfiguredChoice>
  </preconfiguredChoices>
</processingMCP>
"#;

/// Another repository's record of the letter, as Archivematica's PremisImporter sample has.
const IMPORTED_PREMIS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<premis:premis xmlns:premis="http://www.loc.gov/premis/v3" version="3.0">
  <premis:object>
    <premis:objectIdentifier><premis:objectIdentifierType>hdl</premis:objectIdentifierType><premis:objectIdentifierValue>hdl:3847677</premis:objectIdentifierValue></premis:objectIdentifier>
    <premis:originalName>
      objects/letter.txt
    </premis:originalName>
    <premis:linkingEventIdentifier><premis:linkingEventIdentifierType>NRI Repository Event ID</premis:linkingEventIdentifierType><premis:linkingEventIdentifierValue>NRI-016</premis:linkingEventIdentifierValue></premis:linkingEventIdentifier>
  </premis:object>
  <premis:event>
    <premis:eventIdentifier><premis:eventIdentifierType>NRI Repository Event ID</premis:eventIdentifierType><premis:eventIdentifierValue>NRI-016</premis:eventIdentifierValue></premis:eventIdentifier>
    <premis:eventType>ingestion</premis:eventType>
    <premis:eventDateTime>2019-07-04T22:46:07.773391+00:00</premis:eventDateTime>
    <premis:eventDetailInformation><premis:eventDetail>Acquired via records transfer 002/041</premis:eventDetail></premis:eventDetailInformation>
    <premis:eventOutcomeInformation><premis:eventOutcome/></premis:eventOutcomeInformation>
    <premis:linkingAgentIdentifier><premis:linkingAgentIdentifierType>repository code</premis:linkingAgentIdentifierType><premis:linkingAgentIdentifierValue>NRI</premis:linkingAgentIdentifierValue></premis:linkingAgentIdentifier>
  </premis:event>
  <premis:agent>
    <premis:agentIdentifier><premis:agentIdentifierType>repository code</premis:agentIdentifierType><premis:agentIdentifierValue>NRI</premis:agentIdentifierValue></premis:agentIdentifier>
    <premis:agentName>Not a Real Institution</premis:agentName>
    <premis:agentType>organization</premis:agentType>
  </premis:agent>
</premis:premis>
"#;

/// A standard transfer zipped inside its folder, as Archivematica's sample transfers are:
/// the files at the top, metadata/ with metadata.csv (a row for one file only),
/// metadata.json, rights.csv, checksum.md5 in Archivematica's form and a PREMIS file,
/// submission documentation inside metadata/, logs/, processingMCP.xml, an empty folder.
fn demo_transfer() -> Package {
    let letter = b"Dear Archivist,\nplease keep this.\n".to_vec();
    let png = tiny_png();
    let mut p = Package::default();
    p.add("DemoTransfer/letter.txt", letter.clone())
        .add("DemoTransfer/images/photo.png", png.clone())
        .add("DemoTransfer/empty/", Vec::new())
        .add(
            "DemoTransfer/metadata/metadata.csv",
            "filename,dc.title,dc.creator\r\nobjects/letter.txt,A letter,A. Writer\r\nobjects/images,Photographs,\r\n",
        )
        .add(
            "DemoTransfer/metadata/metadata.json",
            r#"[{"filename": "objects/", "dc.title": "Demo transfer", "dc.subject": ["Letters", "Photographs"]}]"#,
        )
        .add("DemoTransfer/metadata/rights.csv", "file,basis,status,determination_date,jurisdiction,start_date,end_date,note,grant_act,grant_restriction,grant_start_date,grant_end_date,grant_note,doc_id_type,doc_id_value,doc_id_role\nobjects/letter.txt,copyright,copyrighted,2020-01-01,uk,2020-01-01,OPEN,,disseminate,allow,2020-01-01,OPEN,,,,\nobjects/images/photo.png,license,,,,,31/12/2030,Licensed,use,Conditional,,2030-12-31,,,,\n")
        .add(
            "DemoTransfer/metadata/checksum.md5",
            format!("{}  letter.txt\n{}  images/photo.png\n", md5_hex(&letter), md5_hex(&png)),
        )
        .add(
            "DemoTransfer/metadata/mets_structmap.xml",
            r#"<?xml version="1.0" encoding="utf-8"?>
<mets:mets xmlns:mets="http://www.loc.gov/METS/">
  <mets:structMap TYPE="logical">
    <mets:div TYPE="correspondence" LABEL="Letter with photograph">
      <mets:div TYPE="page" LABEL="Letter"><mets:fptr FILEID="F1" CONTENTIDS="objects/letter.txt"/></mets:div>
      <mets:div TYPE="page" LABEL="Enclosure"><mets:fptr FILEID="F2" CONTENTIDS="objects/images/photo.png"/></mets:div>
    </mets:div>
  </mets:structMap>
</mets:mets>
"#,
        )
        .add("DemoTransfer/metadata/premis.xml", IMPORTED_PREMIS)
        .add("DemoTransfer/metadata/submissionDocumentation/deed-of-gift.txt", "Given freely.\n")
        .add("DemoTransfer/logs/BagIt-validation.log", "all good\n")
        .add("DemoTransfer/processingMCP.xml", PROCESSING_MCP);
    p
}

fn md5_hex(bytes: &[u8]) -> String {
    let out = Command::new("md5sum").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn();
    let mut child = out.expect("md5sum");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn a_standard_transfer_as_archivists_make_it_is_ingested_with_its_metadata_kept_and_used() {
    let c = Case::zip(&demo_transfer());
    let t = c.complete("standard/DemoTransfer.zip");
    assert_eq!(t.profile, "standard");
    // No catalogue identifier: filed under the transfer's name.
    assert_eq!(t.identifiers.catalogue_identifier, None);
    assert!(t.aip_key.as_deref().unwrap().starts_with("standard/DemoTransfer/v1/"), "{:?}", t.aip_key);
    // processingMCP.xml turned normalization, thumbnails and the DIP off for this transfer.
    assert_eq!(t.dip_key, None, "the transfer's processingMCP.xml said not to store a DIP");
    let files = c.t.env.state.all_files(t.id).unwrap();
    assert!(files.iter().all(|f| f.file_use != FileUse::Preservation), "no preservation copy was made");
    let originals: Vec<&str> =
        files.iter().filter(|f| f.file_use == FileUse::Original).map(|f| f.current_path.as_str()).collect();
    assert_eq!(originals, ["objects/images/photo.png", "objects/letter.txt"], "submission documentation is no object");
    let letter = files.iter().find(|f| f.current_path == "objects/letter.txt").unwrap();
    assert_eq!(letter.original_path, "DemoTransfer/letter.txt", "the upload's name is on record");
    assert!(!letter.renamed(), "moving into objects/ is the layout's, not a new name");

    let bag = c.bag(&t);
    assert!(bag.file_name().unwrap().to_string_lossy().starts_with("DemoTransfer-"));
    let data = bag.join("data");
    assert_eq!(read(&data.join("objects/letter.txt")), "Dear Archivist,\nplease keep this.\n");
    assert_eq!(sha256_hex(&std::fs::read(data.join("objects/images/photo.png")).unwrap()), sha256_hex(&tiny_png()));
    assert_eq!(read(&data.join("objects/submissionDocumentation/deed-of-gift.txt")), "Given freely.\n");
    let transfer_metadata = folder_starting(&data.join("objects/metadata/transfers"), "DemoTransfer-");
    for kept in ["premis.xml", "mets_structmap.xml", "metadata.json", "metadata.csv", "rights.csv", "checksum.md5"] {
        assert!(transfer_metadata.join(kept).is_file(), "metadata/{kept} is kept");
    }
    let transfer_logs = folder_starting(&data.join("logs/transfers"), "DemoTransfer-");
    assert_eq!(read(&transfer_logs.join("logs/BagIt-validation.log")), "all good\n");
    assert_eq!(read(&transfer_logs.join("processingMCP.xml")), PROCESSING_MCP);
    let renames = std::fs::read_to_string(data.join("logs/filenameChanges.log")).unwrap_or_default();
    assert!(!renames.contains("letter.txt"), "no rename is logged for a move into objects/: {renames}");

    let mets_path = folder_starting(&data, "METS.");
    let report = vellum_tests::validate_mets(&mets_path);
    assert_eq!(report["xsd_errors"], serde_json::json!([]), "the METS is valid METS/PREMIS");
    let mets = read(&mets_path);
    // metadata.json's objects/ row is the transfer's Dublin Core; metadata.csv's file row
    // is the letter's own dmdSec.
    assert!(mets.contains("<dc:title>Demo transfer</dc:title>"), "metadata.json is used");
    assert!(mets.contains("<dc:subject>Letters; Photographs</dc:subject>"));
    assert!(mets.contains("<dc:title>A letter</dc:title>") && mets.contains("<dc:creator>A. Writer</dc:creator>"));
    // A row naming a folder is the folder's div's, as Archivematica's multi-level CSV is.
    let images_dmd = mets
        .split("<mets:div TYPE=\"Directory\" LABEL=\"images\" DMDID=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the images folder's div names a dmdSec");
    let images_dc = mets.split(&format!("<mets:dmdSec ID=\"{images_dmd}\"")).nth(1).unwrap();
    assert!(images_dc[..images_dc.find("</mets:dmdSec>").unwrap()].contains("<dc:title>Photographs</dc:title>"));
    // The processing choices are on record.
    assert!(mets.contains("OTHERMDTYPE=\"processingMCP\""), "{mets}");
    assert!(mets.contains("<normalize_for_preservation>false</normalize_for_preservation>"));
    assert!(mets.contains("<store_dip>false</store_dip>"));
    assert!(mets.contains("DMDID=\"dmdSec_1 dmdSec_processing\""));
    // The transfer's own structural map is the METS's second, pointing at the files.
    assert!(mets.contains("<mets:structMap TYPE=\"logical\" ID=\"structMap_2\">"), "the logical structMap is used");
    assert!(mets.contains(&format!("<mets:fptr FILEID=\"file-{}\" CONTENTIDS=\"objects/letter.txt\"/>", letter.uuid)));
    // The other repository's event and agent are in the letter's amdSec.
    assert!(mets.contains("<premis:eventIdentifierValue>NRI-016</premis:eventIdentifierValue>"), "premis.xml is used");
    assert!(mets.contains("<premis:eventDetail>Acquired via records transfer 002/041</premis:eventDetail>"));
    assert!(mets.contains("<premis:agentName>Not a Real Institution</premis:agentName>"));
    // The empty folder is an empty div.
    assert!(
        mets.contains("<mets:div TYPE=\"Directory\" LABEL=\"empty\">"),
        "the empty folder is kept in the structMap"
    );
    // rights.csv's row for the letter, and a fixity check of each file checksum.md5 names.
    assert!(mets.contains("<premis:copyrightStatus>copyrighted</premis:copyrightStatus>"));
    // A date as Archivematica's sample writes one is kept as written and said; an end with
    // no start has an unknown (empty) start, as PREMIS needs one.
    assert!(mets.contains("<premis:licenseApplicableDates><premis:startDate></premis:startDate><premis:endDate>31/12/2030</premis:endDate>"));
    let accepted = c.log("standard/DemoTransfer.zip", "accepted");
    assert!(accepted.contains("column end_date: \"31/12/2030\" is not a date as ISO 8601 writes one"), "{accepted}");
    let events = c.t.env.state.all_events(t.id).unwrap();
    let fixity: Vec<_> = events.iter().filter(|e| e.event_type == "fixity check" && e.detail.contains("md5")).collect();
    assert_eq!(fixity.len(), 2, "one fixity check per file checksum.md5 lists: {fixity:?}");
    assert!(fixity.iter().all(|e| e.outcome == EventOutcome::Pass), "{fixity:?}");
}

#[test]
fn a_standard_transfer_needs_no_metadata_but_something_to_preserve() {
    let mut plain = Package::default();
    plain.add("scan-001.txt", "page one").add("scan-002.txt", "page two");
    let c = Case::zip(&plain);
    let t = c.complete("standard/Scans 1997.zip");
    assert!(t.aip_key.as_deref().unwrap().starts_with("standard/Scans_1997/v1/"), "{:?}", t.aip_key);
    let mut again = Package::default();
    again.add("scan-003.txt", "page three");
    vellum_tests::Package::write_zip(&again, &c.path);
    let second = c.complete("standard/Scans 1997.zip");
    assert!(
        second.aip_key.as_deref().unwrap().starts_with("standard/Scans_1997/v2/"),
        "a second AIP of the name is its next version"
    );

    // Zipped inside its folder, as archivists zip one: the folder is the transfer, and each
    // file's name in the upload stays on record. A lone file is a file, not a folder.
    let mut folder = Package::default();
    folder.add("Photos 1997/", Vec::new()).add("Photos 1997/a.txt", "a").add("Photos 1997/b/c.txt", "c");
    let c = Case::zip(&folder);
    let t = c.complete("standard/Photos 1997.zip");
    let files = c.t.env.state.all_files(t.id).unwrap();
    let names: Vec<(&str, &str)> = files.iter().map(|f| (f.current_path.as_str(), f.original_path.as_str())).collect();
    assert_eq!(names, [("objects/a.txt", "Photos 1997/a.txt"), ("objects/b/c.txt", "Photos 1997/b/c.txt")]);
    let mut lone = Package::default();
    lone.add("only.txt", "only");
    let c = Case::zip(&lone);
    let t = c.complete("standard/only.zip");
    assert_eq!(c.t.env.state.all_files(t.id).unwrap()[0].current_path, "objects/only.txt");

    let mut only_metadata = Package::default();
    only_metadata.add("metadata/notes.txt", "notes").add("logs/x.log", "log");
    Case::zip(&only_metadata).refused("standard/notes.zip", &["there is no file to preserve"]);
}

#[test]
fn a_wrong_digest_in_a_standard_transfers_checksum_file_fails_it_naming_the_file_and_both_digests() {
    let mut p = Package::default();
    p.add("Scans/page-1.txt", "page one\n")
        .add("Scans/metadata/checksum.md5", format!("{}  page-1.txt\n", "0".repeat(32)));
    let c = Case::zip(&p);
    c.failed(
        "standard/Scans.zip",
        &["Scans/page-1.txt does not match the md5", &"0".repeat(32), &md5_hex(b"page one\n")],
    );
}

#[test]
fn a_processing_configuration_that_cannot_be_read_is_refused_with_why() {
    let mut p = Package::catalogued("PP/MCP/1", 2);
    p.add("processingMCP.xml", "<processingMCP><preconfiguredChoices>");
    Case::zip(&p).refused("born-digital/mcp.zip", &["processingMCP.xml cannot be read", "not well-formed"]);
}

#[test]
fn a_processing_configuration_in_a_wellcome_package_overrides_the_profile() {
    let mut p = Package::catalogued("PP/MCP/2", 1);
    p.add("objects/photo.png", tiny_png()).add("processingMCP.xml", PROCESSING_MCP);
    let c = Case::zip(&p);
    let t = c.complete("born-digital/mcp-ok.zip");
    assert_eq!(t.dip_key, None, "the package's processingMCP.xml turned the DIP off");
    assert_eq!(t.identifiers.processing_choices.get("normalize_for_preservation"), Some(&false));
    let files = c.t.env.state.all_files(t.id).unwrap();
    assert!(files.iter().all(|f| f.file_use != FileUse::Preservation), "no preservation copy of the PNG");
    let accepted = c.log("born-digital/mcp-ok.zip", "accepted");
    assert!(accepted.contains("processingMCP.xml sets"), "{accepted}");
    // Without it the same package gets its copy and its DIP: the switch is what changed.
    let mut plain = Package::catalogued("PP/MCP/3", 1);
    plain.add("objects/photo.png", tiny_png());
    let c = Case::zip(&plain);
    let t = c.complete("born-digital/mcp-none.zip");
    assert!(t.dip_key.is_some());
    assert!(c.t.env.state.all_files(t.id).unwrap().iter().any(|f| f.file_use == FileUse::Preservation));
}

/// A bag made by bagit-python, with bag-info fields of the archivist's.
fn make_bag(dir: &Path) {
    std::fs::create_dir_all(dir.join("letters")).unwrap();
    std::fs::write(dir.join("letters/a.txt"), "letter a\n").unwrap();
    std::fs::write(dir.join("photo.png"), tiny_png()).unwrap();
    let status = Command::new(project_python())
        .arg("-c")
        .arg(
            "import bagit, sys\n\
             bagit.make_bag(sys.argv[1], {'Source-Organization': 'Friends of the Archive', 'External-Description': 'Letters and a photograph'}, checksums=['md5', 'sha256'])\n",
        )
        .arg(dir)
        .status()
        .expect("the project's Python");
    assert!(status.success(), "bagit-python made the bag");
    // Archivematica's bags keep the transfer's metadata in a tag folder beside data/, its
    // metadata.csv naming the payload as the bag does.
    std::fs::create_dir_all(dir.join("metadata/submissionDocumentation")).unwrap();
    std::fs::write(dir.join("metadata/metadata.csv"), "filename,dc.title\ndata/letters/a.txt,Letter A\n").unwrap();
    std::fs::write(dir.join("metadata/submissionDocumentation/deed.txt"), "deed\n").unwrap();
    std::fs::write(
        dir.join("metadata/rights.csv"),
        "file,basis,status,jurisdiction\ndata/letters/a.txt,copyright,copyrighted,uk\n",
    )
    .unwrap();
}

/// A folder's files as a package, under `prefix`.
fn package_of(dir: &Path, prefix: &str) -> Package {
    let mut p = Package::default();
    for file in vellum_tests::files_under(dir) {
        let rel = file.strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/");
        p.add(&format!("{prefix}{rel}"), std::fs::read(&file).unwrap());
    }
    p
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn a_zipped_bag_with_or_without_its_folder_is_ingested_with_bag_info_in_the_mets() {
    let work = tempfile::tempdir().unwrap();
    let bag_dir = work.path().join("Donation-2026");
    make_bag(&bag_dir);
    for (prefix, key) in [("Donation-2026/", "bags/wrapped.zip"), ("", "bags/plain.zip")] {
        let c = Case::zip(&package_of(&bag_dir, prefix));
        let t = c.complete(key);
        assert_eq!(t.profile, "bag");
        let files = c.t.env.state.all_files(t.id).unwrap();
        let originals: Vec<&str> =
            files.iter().filter(|f| f.file_use == FileUse::Original).map(|f| f.current_path.as_str()).collect();
        assert_eq!(originals, ["objects/letters/a.txt", "objects/photo.png"], "{key}: the payload is the objects");
        let a = files.iter().find(|f| f.current_path == "objects/letters/a.txt").unwrap();
        assert_eq!(a.original_path, format!("{prefix}data/letters/a.txt"));
        // The bag's own manifests were checked file by file.
        let events = c.t.env.state.all_events(t.id).unwrap();
        assert!(
            events.iter().any(|e| e.file_uuid == Some(a.uuid)
                && e.event_type == "fixity check"
                && e.outcome == EventOutcome::Pass),
            "{key}: the bag's manifest is verified: {:?}",
            events
                .iter()
                .filter(|e| e.file_uuid == Some(a.uuid))
                .map(|e| (e.event_type, &e.detail))
                .collect::<Vec<_>>()
        );
        let bag = c.bag(&t);
        let data = bag.join("data");
        assert_eq!(read(&data.join("objects/letters/a.txt")), "letter a\n");
        let mets_path = folder_starting(&data, "METS.");
        let report = vellum_tests::validate_mets(&mets_path);
        assert_eq!(report["xsd_errors"], serde_json::json!([]), "{key}: the METS is valid METS/PREMIS");
        let mets = read(&mets_path);
        assert!(
            mets.contains("<mets:sourceMD ID=\"sourceMD_1\"><mets:mdWrap MDTYPE=\"OTHER\" OTHERMDTYPE=\"BagIt\">"),
            "{key}: bag-info.txt is the METS's source metadata"
        );
        assert!(mets.contains("ADMID=\"amdSec_transfer\""), "{key}");
        assert!(mets.contains("<dc:title>Letter A</dc:title>"), "{key}: the tag folder's metadata.csv is used");
        assert!(
            mets.contains("<premis:copyrightStatus>copyrighted</premis:copyrightStatus>"),
            "{key}: and its rights.csv"
        );
        assert_eq!(read(&data.join("objects/submissionDocumentation/deed.txt")), "deed\n", "{key}");
        assert!(mets.contains("<Source-Organization>Friends of the Archive</Source-Organization>"), "{key}");
        assert!(mets.contains("<External-Description>Letters and a photograph</External-Description>"), "{key}");
        assert!(mets.contains("<Payload-Oxum>"), "{key}");
    }
}

#[test]
#[ignore = "needs bagit-python; scripts/test runs it"]
fn a_bag_problem_gets_bag_advice_and_a_zip_that_is_no_bag_is_told_so() {
    let work = tempfile::tempdir().unwrap();
    let bag_dir = work.path().join("Broken");
    make_bag(&bag_dir);
    // A payload file changed after bagging, and one added without the manifest knowing.
    std::fs::write(bag_dir.join("data/extra.txt"), "not in the manifest\n").unwrap();
    let log = Case::zip(&package_of(&bag_dir, "")).refused("bags/broken.zip", &["not in manifest-"]);
    assert!(log.contains("bag tool"), "bag advice: {log}");
    assert!(!log.contains("metadata.csv"), "a bag needs no metadata.csv, so none is asked for: {log}");

    // A payload file the manifest names, gone: refused, naming it.
    let missing_dir = work.path().join("Missing");
    make_bag(&missing_dir);
    std::fs::remove_file(missing_dir.join("data/photo.png")).unwrap();
    Case::zip(&package_of(&missing_dir, "Missing/"))
        .refused("bags/missing.zip", &["lists files that are not in the bag", "data/photo.png"]);

    let mut not_a_bag = Package::default();
    not_a_bag.add("a.txt", "a");
    let log = Case::zip(&not_a_bag).refused("bags/not-a-bag.zip", &["not a BagIt bag"]);
    assert!(log.contains("standard/"), "the archivist is told where a plain transfer goes: {log}");
    assert!(!log.contains("metadata.csv"), "{log}");
}

#[test]
fn the_shipped_profiles_take_archivematica_transfers_under_their_prefixes() {
    let config = vellum_core::config::profile::Config::builtin();
    for (key, name) in [("standard/x.zip", "standard"), ("bags/x.zip", "bag")] {
        let p = config.profile_for_key(key).unwrap_or_else(|| panic!("a profile for {key}"));
        assert_eq!(p.name, name);
        assert!(p.supplied_checksums, "{name} verifies the checksum files a transfer brings");
    }
}
