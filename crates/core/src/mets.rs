//! The AIP METS: METS 1.12 with PREMIS 3 objects, events and agents, in the structure
//! Archivematica's AIP METS uses. Written straight to a stream, file by file.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use uuid::Uuid;

use crate::aip::{bag_name, payload_path};
use crate::model::{Agent, File, FileUse, PremisEvent, Timestamp, Transfer};
use crate::xml::esc;

const HEADER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<mets:mets xmlns:mets="http://www.loc.gov/METS/" xmlns:premis="http://www.loc.gov/premis/v3" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.loc.gov/METS/ http://www.loc.gov/standards/mets/version1121/mets.xsd""#;

const PREMIS_SCHEMA: &str = r#"xsi:schemaLocation="http://www.loc.gov/premis/v3 http://www.loc.gov/standards/premis/v3/premis.xsd" version="3.0""#;

/// The fifteen Dublin Core elements; other `dc.*` columns are not written yet.
const DC_ELEMENTS: &[&str] = &[
    "title",
    "creator",
    "subject",
    "description",
    "publisher",
    "contributor",
    "date",
    "type",
    "format",
    "identifier",
    "source",
    "language",
    "relation",
    "coverage",
    "rights",
];

fn ts(t: &Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Writes the METS for `files` (in the order given) with their `events`.
pub fn write_aip_mets(
    out: &mut dyn Write,
    transfer: &Transfer,
    files: &[File],
    events: &[PremisEvent],
    created: Timestamp,
) -> io::Result<()> {
    let mut by_file: BTreeMap<Uuid, Vec<&PremisEvent>> = BTreeMap::new();
    for e in events {
        if let Some(f) = e.file_uuid {
            by_file.entry(f).or_default().push(e);
        }
    }
    writeln!(out, "{HEADER} OBJID=\"{}\">", transfer.aip_uuid)?;
    writeln!(
        out,
        "<mets:metsHdr CREATEDATE=\"{}\"><mets:agent ROLE=\"CREATOR\" TYPE=\"OTHER\" OTHERTYPE=\"SOFTWARE\"><mets:name>{}</mets:name></mets:agent></mets:metsHdr>",
        ts(&created),
        crate::SOFTWARE_AGENT
    )?;
    write_dublin_core(out, transfer, created)?;
    for (n, file) in files.iter().enumerate() {
        write_amd_sec(out, transfer, n + 1, file, by_file.get(&file.uuid).map_or(&[][..], Vec::as_slice))?;
    }
    write_file_sec(out, transfer, files)?;
    write_struct_map(out, transfer, files)?;
    writeln!(out, "</mets:mets>")
}

fn write_dublin_core(out: &mut dyn Write, transfer: &Transfer, created: Timestamp) -> io::Result<()> {
    write!(
        out,
        "<mets:dmdSec ID=\"dmdSec_1\" CREATED=\"{}\"><mets:mdWrap MDTYPE=\"DC\"><mets:xmlData><dcterms:dublincore>",
        ts(&created)
    )?;
    let dc = &transfer.identifiers.dublin_core;
    for term in DC_ELEMENTS {
        if let Some(v) = dc.get(*term) {
            write!(out, "<dc:{term}>{}</dc:{term}>", esc(v))?;
        }
    }
    writeln!(out, "</dcterms:dublincore></mets:xmlData></mets:mdWrap></mets:dmdSec>")
}

fn write_amd_sec(
    out: &mut dyn Write,
    transfer: &Transfer,
    n: usize,
    file: &File,
    events: &[&PremisEvent],
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
    if !file.characteristics.is_empty() {
        write!(out, "<premis:objectCharacteristicsExtension><vellum:characteristics xmlns:vellum=\"urn:vellum:characteristics:1\">")?;
        for (k, v) in &file.characteristics {
            write!(out, "<vellum:property name=\"{}\">{}</vellum:property>", esc(k), esc(v))?;
        }
        write!(out, "</vellum:characteristics></premis:objectCharacteristicsExtension>")?;
    }
    write!(out, "</premis:objectCharacteristics>")?;
    writeln!(
        out,
        "<premis:originalName>%transferDirectory%{}</premis:originalName></premis:object></mets:xmlData></mets:mdWrap></mets:techMD>",
        esc(&file.original_path)
    )?;
    let mut agents: BTreeSet<&Agent> = BTreeSet::new();
    let mut id = 0;
    for e in events {
        id += 1;
        write_event(out, n, id, e)?;
        for a in &e.agents {
            agents.insert(a);
        }
    }
    for a in agents {
        id += 1;
        write!(
            out,
            "<mets:digiprovMD ID=\"digiprovMD_{n}_{id}\"><mets:mdWrap MDTYPE=\"PREMIS:AGENT\"><mets:xmlData><premis:agent {PREMIS_SCHEMA}>"
        )?;
        writeln!(
            out,
            "<premis:agentIdentifier><premis:agentIdentifierType>{}</premis:agentIdentifierType><premis:agentIdentifierValue>{}</premis:agentIdentifierValue></premis:agentIdentifier><premis:agentName>{}</premis:agentName><premis:agentType>{}</premis:agentType></premis:agent></mets:xmlData></mets:mdWrap></mets:digiprovMD>",
            esc(&a.identifier_type),
            esc(&a.identifier_value),
            esc(&a.name),
            esc(&a.agent_type)
        )?;
    }
    let _ = transfer;
    writeln!(out, "</mets:amdSec>")
}

fn write_event(out: &mut dyn Write, n: usize, id: usize, e: &PremisEvent) -> io::Result<()> {
    write!(
        out,
        "<mets:digiprovMD ID=\"digiprovMD_{n}_{id}\"><mets:mdWrap MDTYPE=\"PREMIS:EVENT\"><mets:xmlData><premis:event {PREMIS_SCHEMA}>"
    )?;
    write!(
        out,
        "<premis:eventIdentifier><premis:eventIdentifierType>UUID</premis:eventIdentifierType><premis:eventIdentifierValue>{}</premis:eventIdentifierValue></premis:eventIdentifier><premis:eventType>{}</premis:eventType><premis:eventDateTime>{}</premis:eventDateTime>",
        e.uuid,
        esc(&e.event_type),
        ts(&e.date_time)
    )?;
    if !e.detail.is_empty() {
        write!(
            out,
            "<premis:eventDetailInformation><premis:eventDetail>{}</premis:eventDetail></premis:eventDetailInformation>",
            esc(&e.detail)
        )?;
    }
    write!(
        out,
        "<premis:eventOutcomeInformation><premis:eventOutcome>{}</premis:eventOutcome>",
        esc(e.outcome.as_str())
    )?;
    if !e.outcome_detail.is_empty() {
        write!(
            out,
            "<premis:eventOutcomeDetail><premis:eventOutcomeDetailNote>{}</premis:eventOutcomeDetailNote></premis:eventOutcomeDetail>",
            esc(&e.outcome_detail)
        )?;
    }
    write!(out, "</premis:eventOutcomeInformation>")?;
    for a in &e.agents {
        write!(
            out,
            "<premis:linkingAgentIdentifier><premis:linkingAgentIdentifierType>{}</premis:linkingAgentIdentifierType><premis:linkingAgentIdentifierValue>{}</premis:linkingAgentIdentifierValue></premis:linkingAgentIdentifier>",
            esc(&a.identifier_type),
            esc(&a.identifier_value)
        )?;
    }
    writeln!(out, "</premis:event></mets:xmlData></mets:mdWrap></mets:digiprovMD>")
}

fn write_file_sec(out: &mut dyn Write, transfer: &Transfer, files: &[File]) -> io::Result<()> {
    writeln!(out, "<mets:fileSec>")?;
    for file_use in [FileUse::Original, FileUse::Metadata] {
        let group: Vec<(usize, &File)> = files.iter().enumerate().filter(|(_, f)| f.file_use == file_use).collect();
        if group.is_empty() {
            continue;
        }
        writeln!(out, "<mets:fileGrp USE=\"{}\">", file_use.as_str())?;
        for (i, f) in group {
            writeln!(
                out,
                "<mets:file ID=\"file-{id}\" GROUPID=\"Group-{id}\" ADMID=\"amdSec_{n}\"><mets:FLocat xlink:href=\"{href}\" LOCTYPE=\"OTHER\" OTHERLOCTYPE=\"SYSTEM\"/></mets:file>",
                id = f.uuid,
                n = i + 1,
                href = esc(&payload_path(transfer, f))
            )?;
        }
        writeln!(out, "</mets:fileGrp>")?;
    }
    writeln!(out, "</mets:fileSec>")
}

/// A directory tree of the payload, so the structMap mirrors it.
#[derive(Default)]
struct Dir<'a> {
    dirs: BTreeMap<&'a str, Dir<'a>>,
    files: BTreeMap<&'a str, Uuid>,
}

fn write_struct_map(out: &mut dyn Write, transfer: &Transfer, files: &[File]) -> io::Result<()> {
    let paths: Vec<(String, Uuid)> = files.iter().map(|f| (payload_path(transfer, f), f.uuid)).collect();
    let mut root = Dir::default();
    for (path, uuid) in &paths {
        let mut parts: Vec<&str> = path.split('/').collect();
        let name = parts.pop().unwrap_or_default();
        let mut dir = &mut root;
        for p in parts {
            dir = dir.dirs.entry(p).or_default();
        }
        dir.files.insert(name, *uuid);
    }
    writeln!(
        out,
        "<mets:structMap TYPE=\"physical\" ID=\"structMap_1\" LABEL=\"Archivematica default\"><mets:div TYPE=\"Directory\" LABEL=\"{}\" DMDID=\"dmdSec_1\">",
        esc(&bag_name(transfer))
    )?;
    write_dir(out, &root)?;
    writeln!(out, "</mets:div></mets:structMap>")
}

fn write_dir(out: &mut dyn Write, dir: &Dir<'_>) -> io::Result<()> {
    for (name, sub) in &dir.dirs {
        writeln!(out, "<mets:div TYPE=\"Directory\" LABEL=\"{}\">", esc(name))?;
        write_dir(out, sub)?;
        writeln!(out, "</mets:div>")?;
    }
    for (name, uuid) in &dir.files {
        writeln!(
            out,
            "<mets:div TYPE=\"Item\" LABEL=\"{}\"><mets:fptr FILEID=\"file-{uuid}\"/></mets:div>",
            esc(name)
        )?;
    }
    Ok(())
}
