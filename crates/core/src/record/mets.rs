//! The AIP METS: METS 1.12 with PREMIS 3 objects, events and agents, in the structure
//! Archivematica's AIP METS uses. Written straight to a stream, file by file.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use uuid::Uuid;

use crate::intake::metadata::DC_ELEMENTS;
use crate::model::{
    preservation_copy_id, Agent, EventOutcome, EventType, File, FileUse, PremisEvent, Timestamp, Transfer,
};
use crate::record::aip::{bag_name, payload_path};
use crate::record::rights::RightsRow;
use crate::record::xml::esc;

const HEADER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<mets:mets xmlns:mets="http://www.loc.gov/METS/" xmlns:premis="http://www.loc.gov/premis/v3" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.loc.gov/METS/ http://www.loc.gov/standards/mets/version1121/mets.xsd""#;

/// For PREMIS elements that take no `version` attribute (rightsStatement).
const PREMIS_LOCATION: &str =
    r#"xsi:schemaLocation="http://www.loc.gov/premis/v3 http://www.loc.gov/standards/premis/v3/premis.xsd""#;

const PREMIS_SCHEMA: &str = r#"xsi:schemaLocation="http://www.loc.gov/premis/v3 http://www.loc.gov/standards/premis/v3/premis.xsd" version="3.0""#;

fn ts(t: &Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Which METS is being written: the AIP's, or the transfer's (kept in the AIP's
/// submission documentation, as Archivematica keeps it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetsKind {
    Aip,
    Transfer,
}

/// Where the METS writer gets a file's events from.
pub type EventsOf<'a> = &'a dyn Fn(&File) -> io::Result<Vec<PremisEvent>>;

/// The document's files, walked in document order as often as the writer needs them (the
/// amdSecs, each fileGrp, the structMap): a state store's pages, never all in memory.
pub trait FileSource {
    fn each(&self, f: &mut dyn FnMut(&File) -> io::Result<()>) -> io::Result<()>;
}

impl FileSource for [File] {
    fn each(&self, f: &mut dyn FnMut(&File) -> io::Result<()>) -> io::Result<()> {
        self.iter().try_for_each(f)
    }
}

impl FileSource for Vec<File> {
    fn each(&self, f: &mut dyn FnMut(&File) -> io::Result<()>) -> io::Result<()> {
        self.iter().try_for_each(f)
    }
}

/// What a METS document is written from.
pub struct MetsDoc<'a> {
    pub kind: MetsKind,
    pub transfer: &'a Transfer,
    /// In the order they are to appear.
    pub files: &'a dyn FileSource,
    /// A file's events, asked for one file at a time, so they need not all be in memory.
    pub events: EventsOf<'a>,
    /// rights.csv rows, by the original path of the file they are about.
    pub rights: &'a BTreeMap<String, Vec<RightsRow>>,
    /// The upload's empty folders (`record::aip::empty_folders`), kept as empty divs.
    pub empty_folders: &'a [String],
    /// metadata.csv's rows for single files (`objects/<path>` → Dublin Core by term), each
    /// a dmdSec of its own that the file's div names.
    pub file_dc: &'a BTreeMap<String, BTreeMap<String, String>>,
    /// The transfer's Dublin Core: metadata.csv's `objects/` row (or metadata.json's).
    pub transfer_dc: &'a BTreeMap<String, String>,
    /// The transfer's other descriptive metadata, each a dmdSec its div names.
    pub transfer_md: &'a [TransferMetadata],
    /// How the transfer was laid out, to name its files as its own metadata does.
    pub package_kind: crate::config::profile::PackageKind,
    /// The transfer's own structural map (`metadata/mets_structmap.xml`), if it has one.
    pub struct_map: Option<&'a str>,
    /// What the transfer's own PREMIS (`metadata/premis.xml`) recorded of its files.
    pub imported: Option<&'a crate::record::premis_import::ImportedPremis>,
    /// Events about the transfer itself (the upload's entries left out of the AIP), in the
    /// transfer's amdSec.
    pub transfer_events: &'a [PremisEvent],
    pub created: Timestamp,
}

/// Metadata about the whole transfer that is not Dublin Core: `MDTYPE="OTHER"` holding
/// `<transfer_metadata>` with an element per field. Archivematica keeps a bag's
/// `bag-info.txt` so, as a `sourceMD` in an amdSec the transfer's div names; descriptive
/// metadata (the processing choices) is a dmdSec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferMetadata {
    /// The section's ID (`sourceMD_1`, `dmdSec_processing`).
    pub id: &'static str,
    /// Its OTHERMDTYPE (`BagIt`).
    pub kind: &'static str,
    /// Whether it is where the transfer came from (a `sourceMD`) rather than a `dmdSec`.
    pub source: bool,
    pub fields: Vec<(String, String)>,
}

/// The amdSec of the transfer's own source metadata.
const TRANSFER_AMD_SEC: &str = "amdSec_transfer";

/// A field name as an XML element name: kept where it is one, its other characters made `_`.
fn element_name(term: &str) -> String {
    let name = if is_xml_name(term) {
        term.to_string()
    } else {
        term.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
    };
    if is_xml_name(&name) {
        name
    } else {
        format!("_{name}")
    }
}

fn write_transfer_metadata(out: &mut dyn Write, md: &TransferMetadata, created: Timestamp) -> io::Result<()> {
    let section = if md.source { "sourceMD" } else { "dmdSec" };
    let dated = if md.source { String::new() } else { format!(" CREATED=\"{}\"", ts(&created)) };
    write!(
        out,
        "<mets:{section} ID=\"{}\"{dated}><mets:mdWrap MDTYPE=\"OTHER\" OTHERMDTYPE=\"{}\"><mets:xmlData><transfer_metadata>",
        md.id,
        esc(md.kind)
    )?;
    for (field, value) in &md.fields {
        let name = element_name(field);
        write!(out, "<{name}>{}</{name}>", esc(value))?;
    }
    writeln!(out, "</transfer_metadata></mets:xmlData></mets:mdWrap></mets:{section}>")
}

impl MetsDoc<'_> {
    /// What the transfer's metadata (rights.csv, metadata.csv) calls an entry of the upload.
    fn transfer_name(&self, upload_name: &str) -> String {
        let wrapper = self.transfer.identifiers.wrapping_folder.as_deref();
        crate::intake::layout::layout_name(self.package_kind, wrapper, upload_name, false)
    }

    fn path_of(&self, file: &File) -> String {
        match self.kind {
            MetsKind::Aip => payload_path(self.transfer, file),
            MetsKind::Transfer => file.current_path.clone(),
        }
    }
}

/// Writes the METS for the files (in the order given) with their events and rights, in one
/// go: the head, an amdSec per file, the tail.
pub fn write_aip_mets(out: &mut dyn Write, doc: &MetsDoc<'_>) -> io::Result<()> {
    write_head(out, doc)?;
    let mut n = 0;
    doc.files.each(&mut |file| {
        n += 1;
        write_amd_sec_of(out, doc, n, file)
    })?;
    write_tail(out, doc)
}

/// The document up to the first amdSec: the header and the Dublin Core dmdSec.
pub fn write_head(out: &mut dyn Write, doc: &MetsDoc<'_>) -> io::Result<()> {
    let transfer = doc.transfer;
    let objid = match doc.kind {
        MetsKind::Aip => transfer.aip_uuid,
        MetsKind::Transfer => transfer.id,
    };
    writeln!(out, "{HEADER} OBJID=\"{objid}\">")?;
    write!(
        out,
        "<mets:metsHdr CREATEDATE=\"{}\"><mets:agent ROLE=\"CREATOR\" TYPE=\"OTHER\" OTHERTYPE=\"SOFTWARE\"><mets:name>{}</mets:name></mets:agent>",
        ts(&doc.created),
        crate::SOFTWARE_AGENT
    )?;
    if let Some(accession) = &transfer.identifiers.accession_number {
        write!(out, "<mets:altRecordID TYPE=\"Accession ID\">{}</mets:altRecordID>", esc(accession))?;
    }
    writeln!(out, "</mets:metsHdr>")?;
    write_dublin_core(out, "dmdSec_1", doc.transfer_dc, doc.created)?;
    for md in doc.transfer_md.iter().filter(|md| !md.source) {
        write_transfer_metadata(out, md, doc.created)?;
    }
    for (i, dc) in doc.file_dc.values().enumerate() {
        write_dublin_core(out, &file_dmd_id(i), dc, doc.created)?;
    }
    // METS keeps every dmdSec before the first amdSec.
    if has_transfer_amd_sec(doc) {
        writeln!(out, "<mets:amdSec ID=\"{TRANSFER_AMD_SEC}\">")?;
        for md in doc.transfer_md.iter().filter(|md| md.source) {
            write_transfer_metadata(out, md, doc.created)?;
        }
        // The transfer's digiprovMDs are numbered as a file's would be, as file 0.
        let mut id = 0;
        let mut agents: BTreeSet<&Agent> = BTreeSet::new();
        for e in doc.transfer_events {
            id += 1;
            write_event(out, 0, id, &EventRecord::own(e))?;
            agents.extend(&e.agents);
        }
        for a in agents {
            id += 1;
            write_agent(out, 0, id, (&a.identifier_type, &a.identifier_value, &a.name, &a.agent_type))?;
        }
        writeln!(out, "</mets:amdSec>")?;
    }
    Ok(())
}

/// Whether the transfer has an amdSec of its own: source metadata or events.
fn has_transfer_amd_sec(doc: &MetsDoc<'_>) -> bool {
    doc.transfer_md.iter().any(|md| md.source) || !doc.transfer_events.is_empty()
}

/// The dmdSec of the `i`th file row of metadata.csv (in path order): after the package's.
fn file_dmd_id(i: usize) -> String {
    format!("dmdSec_{}", i + 2)
}

/// The amdSec of the `n`th file (from 1): its object, its events, its rights.
pub fn write_amd_sec_of(out: &mut dyn Write, doc: &MetsDoc<'_>, n: usize, file: &File) -> io::Result<()> {
    let events = (doc.events)(file)?;
    let events: Vec<&PremisEvent> = events.iter().collect();
    // rights.csv names files as objects/…, wherever the upload had them (a bag's under
    // data/, a standard transfer's at its top). Rows for `objects` (or `objects/`) are the
    // whole transfer's: every file of objects/ has them.
    let path = doc.transfer_name(&file.original_path);
    let own = doc.rights.get(&file.original_path).or_else(|| doc.rights.get(&path));
    let whole = crate::record::rights::WHOLE_TRANSFER
        .iter()
        .filter(|_| path.starts_with("objects/") && file.file_use == crate::model::FileUse::Original)
        .filter_map(|w| doc.rights.get(*w));
    let rights: Vec<RightsRow> = own.into_iter().chain(whole).flatten().cloned().collect();
    let imported = match (doc.imported, file.file_use) {
        (Some(premis), crate::model::FileUse::Original) => premis.of(&path),
        _ => Default::default(),
    };
    write_amd_sec(out, n, file, &events, &rights, &imported)
}

/// The document after the last amdSec: the fileSec, the structMap and the end.
///
/// One walk of the files writes the originals' fileGrp and gathers the structMap (and the
/// transfer's own structMap's pointers); the other groups' lines are held meanwhile, up to
/// HELD_GROUP_BYTES in all, and a group that does not fit is walked for again.
pub fn write_tail(out: &mut dyn Write, doc: &MetsDoc<'_>) -> io::Result<()> {
    write_tail_holding(out, doc, HELD_GROUP_BYTES)
}

fn write_tail_holding(out: &mut dyn Write, doc: &MetsDoc<'_>, hold: usize) -> io::Result<()> {
    writeln!(out, "<mets:fileSec>")?;
    let mut tree = StructTree::new(doc);
    // The transfer's own structMap names files as the transfer does: the originals, by that name.
    let mut pointers = doc.struct_map.map(|_| std::collections::HashMap::new());
    let mut held: [HeldGroup; FILE_GROUPS.len()] = Default::default();
    let mut held_bytes = 0;
    let mut opened = false;
    let mut n = 0;
    doc.files.each(&mut |f| {
        n += 1;
        tree.add(doc, f);
        if let (Some(pointers), FileUse::Original) = (pointers.as_mut(), f.file_use) {
            pointers.insert(doc.transfer_name(&f.original_path), f.uuid);
        }
        let group = file_group(f.file_use);
        if group == 0 {
            if !opened {
                writeln!(out, "<mets:fileGrp USE=\"{}\">", f.file_use.as_str())?;
                opened = true;
            }
            return write_file_pointer(out, doc, n, f);
        }
        let held = &mut held[group];
        held.files += 1;
        if !held.too_many {
            let before = held.lines.len();
            write_file_pointer(&mut held.lines, doc, n, f)?;
            held_bytes += held.lines.len() - before;
            if held_bytes > hold {
                held_bytes -= held.lines.len();
                held.lines = Vec::new();
                held.too_many = true;
            }
        }
        Ok(())
    })?;
    if opened {
        writeln!(out, "</mets:fileGrp>")?;
    }
    for (group, file_use) in FILE_GROUPS.into_iter().enumerate().skip(1) {
        let held = &held[group];
        if held.files == 0 {
            continue;
        }
        writeln!(out, "<mets:fileGrp USE=\"{}\">", file_use.as_str())?;
        if held.too_many {
            let mut n = 0;
            doc.files.each(&mut |f| {
                n += 1;
                if f.file_use == file_use {
                    write_file_pointer(out, doc, n, f)?;
                }
                Ok(())
            })?;
        } else {
            out.write_all(&held.lines)?;
        }
        writeln!(out, "</mets:fileGrp>")?;
    }
    writeln!(out, "</mets:fileSec>")?;
    write_struct_map(out, doc, tree)?;
    if let (Some(xml), Some(pointers)) = (doc.struct_map, pointers) {
        crate::record::structmap::write_struct_maps(out, xml, &pointers, 2)?;
    }
    writeln!(out, "</mets:mets>")
}

/// The fileSec's groups, in order.
const FILE_GROUPS: [FileUse; 5] = [
    FileUse::Original,
    FileUse::Preservation,
    FileUse::SubmissionDocumentation,
    FileUse::Metadata,
    FileUse::Transcription,
];

fn file_group(file_use: FileUse) -> usize {
    FILE_GROUPS.iter().position(|g| *g == file_use).expect("every use has a group")
}

/// Lines held for a fileGrp after the first: at most a few megabytes for all of them.
const HELD_GROUP_BYTES: usize = 4 << 20;

#[derive(Default)]
struct HeldGroup {
    lines: Vec<u8>,
    files: usize,
    /// Its lines did not fit: the group is written from a walk of its own.
    too_many: bool,
}

/// Whether a name can be an XML element name as it is.
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn write_dublin_core(
    out: &mut dyn Write,
    id: &str,
    dc: &BTreeMap<String, String>,
    created: Timestamp,
) -> io::Result<()> {
    write!(
        out,
        "<mets:dmdSec ID=\"{id}\" CREATED=\"{}\"><mets:mdWrap MDTYPE=\"DC\"><mets:xmlData><dcterms:dublincore xsi:schemaLocation=\"http://purl.org/dc/terms/ https://dublincore.org/schemas/xmls/qdc/2008/02/11/dcterms.xsd\">",
        ts(&created)
    )?;
    // The fifteen Dublin Core elements as dc:, every other dc.* column as a dcterms: term.
    for term in DC_ELEMENTS {
        if let Some(v) = dc.get(*term) {
            write!(out, "<dc:{term}>{}</dc:{term}>", esc(v))?;
        }
    }
    for (term, v) in dc.iter().filter(|(t, _)| !DC_ELEMENTS.contains(&t.as_str())) {
        let name = element_name(term);
        write!(out, "<dcterms:{name}>{}</dcterms:{name}>", esc(v))?;
    }
    writeln!(out, "</dcterms:dublincore></mets:xmlData></mets:mdWrap></mets:dmdSec>")
}

/// Events and agents another repository recorded for a file (its premis.xml).
type Imported<'a> =
    (Vec<&'a crate::record::premis_import::ImportedEvent>, Vec<&'a crate::record::premis_import::ImportedAgent>);

fn write_amd_sec(
    out: &mut dyn Write,
    n: usize,
    file: &File,
    events: &[&PremisEvent],
    rights: &[RightsRow],
    imported: &Imported<'_>,
) -> io::Result<()> {
    writeln!(out, "<mets:amdSec ID=\"amdSec_{n}\">")?;
    write!(
        out,
        "<mets:techMD ID=\"techMD_{n}\"><mets:mdWrap MDTYPE=\"PREMIS:OBJECT\"><mets:xmlData><premis:object xsi:type=\"premis:file\" {PREMIS_SCHEMA}>"
    )?;
    write!(
        out,
        "<premis:objectIdentifier><premis:objectIdentifierType>UUID</premis:objectIdentifierType><premis:objectIdentifierValue>{}</premis:objectIdentifierValue></premis:objectIdentifier>",
        file.uuid
    )?;
    write!(out, "<premis:objectCharacteristics><premis:compositionLevel>0</premis:compositionLevel>")?;
    for (algorithm, digest) in &file.checksums {
        write!(
            out,
            "<premis:fixity><premis:messageDigestAlgorithm>{}</premis:messageDigestAlgorithm><premis:messageDigest>{}</premis:messageDigest></premis:fixity>",
            esc(algorithm),
            esc(digest)
        )?;
    }
    write!(out, "<premis:size>{}</premis:size><premis:format>", file.size)?;
    match &file.format {
        Some(f) => {
            write!(out, "<premis:formatDesignation><premis:formatName>{}</premis:formatName>", esc(&f.name))?;
            if let Some(v) = &f.version {
                write!(out, "<premis:formatVersion>{}</premis:formatVersion>", esc(v))?;
            }
            write!(
                out,
                "</premis:formatDesignation><premis:formatRegistry><premis:formatRegistryName>PRONOM</premis:formatRegistryName><premis:formatRegistryKey>{}</premis:formatRegistryKey></premis:formatRegistry>",
                esc(&f.puid)
            )?;
        }
        None => write!(
            out,
            "<premis:formatDesignation><premis:formatName>Unknown</premis:formatName></premis:formatDesignation>"
        )?,
    }
    write!(out, "</premis:format>")?;
    // A tool's XML (ExifTool's RDF, MediaInfo's) goes in as XML, an extension of its own,
    // as Archivematica records it; everything else as Vellum's properties.
    let (documents, properties): (Vec<_>, Vec<_>) = file
        .characteristics
        .iter()
        .partition(|(k, v)| k.ends_with(crate::config::fpr::XML_SUFFIX) && embeddable(v).is_some());
    if !properties.is_empty() {
        write!(out, "<premis:objectCharacteristicsExtension><vellum:characteristics xmlns:vellum=\"urn:vellum:characteristics:1\">")?;
        for (k, v) in properties {
            write!(out, "<vellum:property name=\"{}\">{}</vellum:property>", esc(k), esc(v))?;
        }
        write!(out, "</vellum:characteristics></premis:objectCharacteristicsExtension>")?;
    }
    for (_, document) in documents {
        let element = embeddable(document).expect("partitioned on it");
        write!(out, "<premis:objectCharacteristicsExtension>{element}</premis:objectCharacteristicsExtension>")?;
    }
    write!(out, "</premis:objectCharacteristics>")?;
    writeln!(out, "<premis:originalName>%transferDirectory%{}</premis:originalName>", esc(&file.original_path))?;
    // Derivation, both ways: a preservation copy names its original; an original names the
    // copy its normalization made.
    if let (Some(source), FileUse::Preservation) = (file.source, file.file_use) {
        write_relationship(out, "has source", source, None)?;
    }
    for e in events.iter().filter(|e| made_a_copy(e)) {
        write_relationship(out, "is source of", preservation_copy_id(file.uuid), Some(e.uuid))?;
    }
    writeln!(out, "</premis:object></mets:xmlData></mets:mdWrap></mets:techMD>")?;
    for (r, row) in rights.iter().enumerate() {
        write_rights(out, n, r + 1, file, row)?;
    }
    let mut agents: BTreeSet<&Agent> = BTreeSet::new();
    let mut id = 0;
    for e in events {
        id += 1;
        write_event(out, n, id, &EventRecord::own(e))?;
        for a in &e.agents {
            agents.insert(a);
        }
    }
    for e in &imported.0 {
        id += 1;
        write_event(out, n, id, &EventRecord::imported(e))?;
    }
    let own_agents = agents
        .iter()
        .map(|a| (a.identifier_type.as_str(), a.identifier_value.as_str(), a.name.as_str(), a.agent_type.as_str()));
    let their_agents = imported
        .1
        .iter()
        .map(|a| (a.identifier.0.as_str(), a.identifier.1.as_str(), a.name.as_str(), a.agent_type.as_str()));
    for agent in own_agents.chain(their_agents) {
        id += 1;
        write_agent(out, n, id, agent)?;
    }
    writeln!(out, "</mets:amdSec>")
}

/// A PREMIS agent: its identifier's type and value, its name and its type.
fn write_agent(out: &mut dyn Write, n: usize, id: usize, agent: (&str, &str, &str, &str)) -> io::Result<()> {
    let (id_type, id_value, name, agent_type) = agent;
    write!(
        out,
        "<mets:digiprovMD ID=\"digiprovMD_{n}_{id}\"><mets:mdWrap MDTYPE=\"PREMIS:AGENT\"><mets:xmlData><premis:agent {PREMIS_SCHEMA}>"
    )?;
    writeln!(
        out,
        "<premis:agentIdentifier><premis:agentIdentifierType>{}</premis:agentIdentifierType><premis:agentIdentifierValue>{}</premis:agentIdentifierValue></premis:agentIdentifier><premis:agentName>{}</premis:agentName><premis:agentType>{}</premis:agentType></premis:agent></mets:xmlData></mets:mdWrap></mets:digiprovMD>",
        esc(id_type),
        esc(id_value),
        esc(name),
        esc(agent_type)
    )
}

/// Whether the event is a normalization that made a preservation copy.
fn made_a_copy(e: &PremisEvent) -> bool {
    e.event_type == EventType::Normalization && e.outcome == EventOutcome::Positive && e.file_uuid.is_some()
}

fn write_relationship(out: &mut dyn Write, sub_type: &str, related: Uuid, event: Option<Uuid>) -> io::Result<()> {
    write!(
        out,
        "<premis:relationship><premis:relationshipType>derivation</premis:relationshipType><premis:relationshipSubType>{sub_type}</premis:relationshipSubType><premis:relatedObjectIdentifier><premis:relatedObjectIdentifierType>UUID</premis:relatedObjectIdentifierType><premis:relatedObjectIdentifierValue>{related}</premis:relatedObjectIdentifierValue></premis:relatedObjectIdentifier>"
    )?;
    if let Some(event) = event {
        write!(
            out,
            "<premis:relatedEventIdentifier><premis:relatedEventIdentifierType>UUID</premis:relatedEventIdentifierType><premis:relatedEventIdentifierValue>{event}</premis:relatedEventIdentifierValue></premis:relatedEventIdentifier>"
        )?;
    }
    write!(out, "</premis:relationship>")
}

/// An event as a PREMIS event: Vellum's own, or one another repository recorded (under
/// its identifier and words, its outcome only where it gave one).
struct EventRecord<'a> {
    identifier: (&'a str, String),
    event_type: &'a str,
    date_time: String,
    detail: &'a str,
    outcome: Option<&'a str>,
    outcome_detail: &'a str,
    agents: Vec<(&'a str, &'a str)>,
    /// The original and the copy a normalization links.
    objects: Vec<(Uuid, &'static str)>,
}

impl<'a> EventRecord<'a> {
    fn own(e: &'a PremisEvent) -> Self {
        let objects = match (made_a_copy(e), e.file_uuid) {
            (true, Some(original)) => vec![(original, "source"), (preservation_copy_id(original), "outcome")],
            _ => Vec::new(),
        };
        Self {
            identifier: ("UUID", e.uuid.to_string()),
            event_type: e.event_type.as_str(),
            date_time: ts(&e.date_time),
            detail: &e.detail,
            outcome: Some(e.outcome.as_str()),
            outcome_detail: &e.outcome_detail,
            agents: e.agents.iter().map(|a| (a.identifier_type.as_str(), a.identifier_value.as_str())).collect(),
            objects,
        }
    }

    fn imported(e: &'a crate::record::premis_import::ImportedEvent) -> Self {
        let given = !e.outcome.is_empty() || !e.outcome_detail.is_empty();
        Self {
            identifier: (&e.identifier.0, e.identifier.1.clone()),
            event_type: &e.event_type,
            date_time: e.date_time.clone(),
            detail: &e.detail,
            outcome: given.then_some(e.outcome.as_str()),
            outcome_detail: &e.outcome_detail,
            agents: e.agents.iter().map(|(t, v)| (t.as_str(), v.as_str())).collect(),
            objects: Vec::new(),
        }
    }
}

fn write_event(out: &mut dyn Write, n: usize, id: usize, e: &EventRecord<'_>) -> io::Result<()> {
    write!(
        out,
        "<mets:digiprovMD ID=\"digiprovMD_{n}_{id}\"><mets:mdWrap MDTYPE=\"PREMIS:EVENT\"><mets:xmlData><premis:event {PREMIS_SCHEMA}>"
    )?;
    write!(
        out,
        "<premis:eventIdentifier><premis:eventIdentifierType>{}</premis:eventIdentifierType><premis:eventIdentifierValue>{}</premis:eventIdentifierValue></premis:eventIdentifier><premis:eventType>{}</premis:eventType><premis:eventDateTime>{}</premis:eventDateTime>",
        esc(e.identifier.0),
        esc(&e.identifier.1),
        esc(e.event_type),
        esc(&e.date_time)
    )?;
    if !e.detail.is_empty() {
        write!(
            out,
            "<premis:eventDetailInformation><premis:eventDetail>{}</premis:eventDetail></premis:eventDetailInformation>",
            esc(e.detail)
        )?;
    }
    if let Some(outcome) = e.outcome {
        write!(out, "<premis:eventOutcomeInformation><premis:eventOutcome>{}</premis:eventOutcome>", esc(outcome))?;
        if !e.outcome_detail.is_empty() {
            write!(
                out,
                "<premis:eventOutcomeDetail><premis:eventOutcomeDetailNote>{}</premis:eventOutcomeDetailNote></premis:eventOutcomeDetail>",
                esc(e.outcome_detail)
            )?;
        }
        write!(out, "</premis:eventOutcomeInformation>")?;
    }
    for (id_type, id_value) in &e.agents {
        write!(
            out,
            "<premis:linkingAgentIdentifier><premis:linkingAgentIdentifierType>{}</premis:linkingAgentIdentifierType><premis:linkingAgentIdentifierValue>{}</premis:linkingAgentIdentifierValue></premis:linkingAgentIdentifier>",
            esc(id_type),
            esc(id_value)
        )?;
    }
    for (object, role) in &e.objects {
        write!(
            out,
            "<premis:linkingObjectIdentifier><premis:linkingObjectIdentifierType>UUID</premis:linkingObjectIdentifierType><premis:linkingObjectIdentifierValue>{object}</premis:linkingObjectIdentifierValue><premis:linkingObjectRole>{role}</premis:linkingObjectRole></premis:linkingObjectIdentifier>"
        )?;
    }
    writeln!(out, "</premis:event></mets:xmlData></mets:mdWrap></mets:digiprovMD>")
}

/// A file's line in its fileGrp; `n` is its amdSec's number.
fn write_file_pointer(out: &mut dyn Write, doc: &MetsDoc<'_>, n: usize, f: &File) -> io::Result<()> {
    writeln!(
        out,
        "<mets:file ID=\"file-{id}\" GROUPID=\"Group-{id}\" ADMID=\"amdSec_{n}\"><mets:FLocat xlink:href=\"{href}\" LOCTYPE=\"OTHER\" OTHERLOCTYPE=\"SYSTEM\"/></mets:file>",
        id = f.uuid,
        href = esc(&doc.path_of(f))
    )
}

/// A directory tree of the payload, so the structMap mirrors it: names and ids only, about
/// a hundred bytes a file, where a file record is more than a kilobyte.
#[derive(Default)]
struct Dir {
    dirs: BTreeMap<Box<str>, Dir>,
    /// The folder's own dmdSec's number, if metadata.csv describes the folder.
    dmd: Option<u32>,
    /// Each file's UUID, and its own dmdSec's number if metadata.csv describes it.
    files: BTreeMap<Box<str>, (Uuid, Option<u32>)>,
}

/// The structMap's tree, gathered a file at a time.
struct StructTree<'d> {
    root: Dir,
    /// metadata.csv's rows for single files, by path: each row's dmdSec number.
    described: BTreeMap<&'d str, u32>,
}

impl<'d> StructTree<'d> {
    fn new(doc: &MetsDoc<'d>) -> Self {
        let described = doc.file_dc.keys().enumerate().map(|(i, p)| (p.as_str(), i as u32)).collect();
        Self { root: Dir::default(), described }
    }

    fn add(&mut self, doc: &MetsDoc<'_>, f: &File) {
        let path = doc.path_of(f);
        let mut parts: Vec<&str> = path.split('/').collect();
        let name = parts.pop().unwrap_or_default();
        let original = doc.transfer_name(&f.original_path);
        let is_original = f.file_use == crate::model::FileUse::Original;
        // An original's folders are its name's folders, sanitized one for one: a row of
        // metadata.csv naming a folder (`objects/minutes`) is that folder's div's.
        let folders: Vec<usize> = original.match_indices('/').map(|(i, _)| i).collect();
        let mut dir = &mut self.root;
        for (depth, p) in parts.into_iter().enumerate() {
            dir = dir.dirs.entry(p.into()).or_default();
            if is_original && dir.dmd.is_none() {
                dir.dmd = folders.get(depth).and_then(|&end| self.described.get(&original[..end]).copied());
            }
        }
        let dmd = is_original.then(|| self.described.get(original.as_str()).copied()).flatten();
        dir.files.insert(name.into(), (f.uuid, dmd));
    }
}

fn write_struct_map(out: &mut dyn Write, doc: &MetsDoc<'_>, tree: StructTree<'_>) -> io::Result<()> {
    let mut root = tree.root;
    // An empty folder of objects/, under the name sanitizing gives it (a bag's under its
    // data/): a div with nothing in it, as Archivematica keeps one.
    for folder in doc.empty_folders {
        let path = doc.transfer_name(folder);
        if !path.starts_with("objects/") {
            continue;
        }
        let mut dir = &mut root;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            dir = dir.dirs.entry(crate::intake::sanitize::sanitize_component(part).into()).or_default();
        }
    }
    let label = match doc.kind {
        MetsKind::Aip => bag_name(doc.transfer),
        MetsKind::Transfer => format!("{}-{}", crate::record::keys::safe_name(doc.transfer), doc.transfer.id),
    };
    let dmd_ids: Vec<&str> =
        std::iter::once("dmdSec_1").chain(doc.transfer_md.iter().filter(|md| !md.source).map(|md| md.id)).collect();
    let admid = if has_transfer_amd_sec(doc) { format!(" ADMID=\"{TRANSFER_AMD_SEC}\"") } else { String::new() };
    writeln!(
        out,
        "<mets:structMap TYPE=\"physical\" ID=\"structMap_1\" LABEL=\"Archivematica default\"><mets:div TYPE=\"Directory\" LABEL=\"{}\" DMDID=\"{}\"{admid}>",
        esc(&label),
        dmd_ids.join(" ")
    )?;
    write_dir(out, &root)?;
    writeln!(out, "</mets:div></mets:structMap>")
}

fn write_dir(out: &mut dyn Write, dir: &Dir) -> io::Result<()> {
    for (name, sub) in &dir.dirs {
        let dmdid = sub.dmd.map(|i| format!(" DMDID=\"{}\"", file_dmd_id(i as usize))).unwrap_or_default();
        writeln!(out, "<mets:div TYPE=\"Directory\" LABEL=\"{}\"{dmdid}>", esc(name))?;
        write_dir(out, sub)?;
        writeln!(out, "</mets:div>")?;
    }
    for (name, (uuid, dmd)) in &dir.files {
        let dmdid = dmd.map(|i| format!(" DMDID=\"{}\"", file_dmd_id(i as usize))).unwrap_or_default();
        writeln!(
            out,
            "<mets:div TYPE=\"Item\" LABEL=\"{}\"{dmdid}><mets:fptr FILEID=\"file-{uuid}\"/></mets:div>",
            esc(name)
        )?;
    }
    Ok(())
}

/// A rights.csv row as a PREMIS rights statement (PREMIS 3 element order).
fn write_rights(out: &mut dyn Write, n: usize, r: usize, file: &File, row: &RightsRow) -> io::Result<()> {
    let get = |k: &str| row.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let basis = get("basis").unwrap_or("other").to_ascii_lowercase();
    let id = crate::model::derived_id(file.uuid, &format!("rights/{r}"));
    write!(
        out,
        "<mets:rightsMD ID=\"rightsMD_{n}_{r}\"><mets:mdWrap MDTYPE=\"PREMIS:RIGHTS\"><mets:xmlData><premis:rightsStatement {PREMIS_LOCATION}>"
    )?;
    write!(
        out,
        "<premis:rightsStatementIdentifier><premis:rightsStatementIdentifierType>UUID</premis:rightsStatementIdentifierType><premis:rightsStatementIdentifierValue>{id}</premis:rightsStatementIdentifierValue></premis:rightsStatementIdentifier>"
    )?;
    let mut chars = basis.chars();
    let title: String = chars.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(chars).collect();
    write!(out, "<premis:rightsBasis>{}</premis:rightsBasis>", esc(&title))?;
    let el = |out: &mut dyn Write, tag: &str, v: Option<&str>| -> io::Result<()> {
        match v {
            // An open end as Archivematica writes it.
            Some(v) if tag == "endDate" && crate::record::rights::is_open(v) => {
                write!(out, "<premis:{tag}>OPEN</premis:{tag}>")
            }
            Some(v) => write!(out, "<premis:{tag}>{}</premis:{tag}>", esc(v)),
            None => Ok(()),
        }
    };
    let doc_id = |out: &mut dyn Write, prefix: &str| -> io::Result<()> {
        if let (Some(t), Some(v)) = (get("doc_id_type"), get("doc_id_value")) {
            write!(out, "<premis:{prefix}DocumentationIdentifier><premis:{prefix}DocumentationIdentifierType>{}</premis:{prefix}DocumentationIdentifierType><premis:{prefix}DocumentationIdentifierValue>{}</premis:{prefix}DocumentationIdentifierValue>", esc(t), esc(v))?;
            if let Some(role) = get("doc_id_role") {
                write!(out, "<premis:{prefix}DocumentationRole>{}</premis:{prefix}DocumentationRole>", esc(role))?;
            }
            write!(out, "</premis:{prefix}DocumentationIdentifier>")?;
        }
        Ok(())
    };
    // PREMIS needs a start wherever there is an end: an unknown one is empty, as EDTF
    // writes the unknown start of an interval.
    let date_pair = |out: &mut dyn Write, tag: &str, start: &str, end: &str| -> io::Result<()> {
        if get(start).is_some() || get(end).is_some() {
            write!(out, "<premis:{tag}>")?;
            el(out, "startDate", Some(get(start).unwrap_or("")))?;
            el(out, "endDate", get(end))?;
            write!(out, "</premis:{tag}>")?;
        }
        Ok(())
    };
    let dates = |out: &mut dyn Write, tag: &str| date_pair(out, tag, "start_date", "end_date");
    match basis.as_str() {
        "copyright" => {
            write!(out, "<premis:copyrightInformation>")?;
            el(out, "copyrightStatus", Some(get("status").unwrap_or("unknown")))?;
            el(out, "copyrightJurisdiction", Some(get("jurisdiction").unwrap_or("unknown")))?;
            el(out, "copyrightStatusDeterminationDate", get("determination_date"))?;
            el(out, "copyrightNote", get("note"))?;
            doc_id(out, "copyright")?;
            dates(out, "copyrightApplicableDates")?;
            write!(out, "</premis:copyrightInformation>")?;
        }
        "license" => {
            write!(out, "<premis:licenseInformation>")?;
            doc_id(out, "license")?;
            el(out, "licenseTerms", get("terms"))?;
            el(out, "licenseNote", get("note"))?;
            dates(out, "licenseApplicableDates")?;
            write!(out, "</premis:licenseInformation>")?;
        }
        "statute" => {
            write!(out, "<premis:statuteInformation>")?;
            el(out, "statuteJurisdiction", Some(get("jurisdiction").unwrap_or("unknown")))?;
            el(out, "statuteCitation", Some(get("citation").unwrap_or("unknown")))?;
            el(out, "statuteInformationDeterminationDate", get("determination_date"))?;
            el(out, "statuteNote", get("note"))?;
            doc_id(out, "statute")?;
            dates(out, "statuteApplicableDates")?;
            write!(out, "</premis:statuteInformation>")?;
        }
        _ => {
            write!(out, "<premis:otherRightsInformation>")?;
            doc_id(out, "otherRights")?;
            el(out, "otherRightsBasis", Some(&title))?;
            dates(out, "otherRightsApplicableDates")?;
            el(out, "otherRightsNote", get("note"))?;
            write!(out, "</premis:otherRightsInformation>")?;
        }
    }
    if let Some(act) = get("grant_act") {
        write!(out, "<premis:rightsGranted>")?;
        el(out, "act", Some(act))?;
        if let Some(restriction) = get("grant_restriction") {
            let mut c = restriction.chars();
            let word: String =
                c.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(c.map(|c| c.to_ascii_lowercase())).collect();
            el(out, "restriction", Some(&word))?;
        }
        date_pair(out, "termOfGrant", "grant_start_date", "grant_end_date")?;
        el(out, "rightsGrantedNote", get("grant_note"))?;
        write!(out, "</premis:rightsGranted>")?;
    }
    write!(
        out,
        "<premis:linkingObjectIdentifier><premis:linkingObjectIdentifierType>UUID</premis:linkingObjectIdentifierType><premis:linkingObjectIdentifierValue>{}</premis:linkingObjectIdentifierValue></premis:linkingObjectIdentifier>",
        file.uuid
    )?;
    writeln!(out, "</premis:rightsStatement></mets:xmlData></mets:mdWrap></mets:rightsMD>")
}

/// A tool's XML output as an element to embed: without its XML declaration, and only if it
/// is one well-formed element (anything else is recorded as text).
fn embeddable(document: &str) -> Option<&str> {
    let parsed = roxmltree::Document::parse(document).ok()?;
    let root = parsed.root_element();
    Some(document[root.range()].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(transfer: &Transfer, i: u64, file_use: FileUse, path: &str) -> File {
        File {
            uuid: crate::model::file_id(transfer.id, i),
            transfer_id: transfer.id,
            batch: 0,
            entry_index: i,
            file_use,
            original_path: path.to_string(),
            current_path: path.to_string(),
            size: i,
            checksums: BTreeMap::new(),
            format: None,
            modified: None,
            characteristics: BTreeMap::new(),
            source: None,
        }
    }

    /// Held or walked for again, a fileGrp's lines are the same, in the groups' order, each
    /// file pointing at its own amdSec.
    #[test]
    fn the_file_groups_are_the_same_held_or_walked_again() {
        let now = chrono::Utc::now();
        let transfer = Transfer::new(Uuid::nil(), Uuid::from_u128(1), Uuid::from_u128(2), "uploads", "a.zip", now);
        let uses =
            [FileUse::Original, FileUse::Metadata, FileUse::Preservation, FileUse::Original, FileUse::Transcription];
        let files: Vec<File> = (0..40u64)
            .map(|i| {
                let path = format!("objects/{:02}/f{i}.txt", i % 7);
                file(&transfer, i, uses[i as usize % uses.len()], &path)
            })
            .collect();
        let no_events = |_: &File| -> io::Result<Vec<PremisEvent>> { Ok(Vec::new()) };
        let doc = MetsDoc {
            kind: MetsKind::Transfer,
            transfer: &transfer,
            files: &files,
            events: &no_events,
            rights: &BTreeMap::new(),
            empty_folders: &[],
            file_dc: &BTreeMap::new(),
            transfer_dc: &BTreeMap::new(),
            transfer_md: &[],
            package_kind: crate::config::profile::PackageKind::Catalogued,
            struct_map: None,
            imported: None,
            transfer_events: &[],
            created: now,
        };
        let tail = |hold: usize| {
            let mut out = Vec::new();
            write_tail_holding(&mut out, &doc, hold).unwrap();
            String::from_utf8(out).unwrap()
        };
        let held = tail(usize::MAX);
        // Nothing held (every group walked for), and room for some groups only.
        assert_eq!(held, tail(0));
        assert_eq!(held, tail(1500));
        let groups: Vec<&str> = held.lines().filter_map(|l| l.strip_prefix("<mets:fileGrp USE=\"")).collect();
        assert_eq!(groups, ["original\">", "preservation\">", "metadata\">", "text/ocr\">"]);
        for (n, f) in files.iter().enumerate() {
            let line =
                held.lines().find(|l| l.contains(&format!("file-{}\"", f.uuid))).expect("every file has its line");
            assert!(line.contains(&format!("ADMID=\"amdSec_{}\"", n + 1)), "{line}");
        }
        assert_eq!(held.matches("<mets:fptr ").count(), files.len());
    }
}
