//! A transfer's own structural map (`metadata/mets_structmap.xml`), carried into the AIP's
//! METS as Archivematica carries one: each `structMap` it holds becomes another structMap of
//! the METS, its divisions kept (TYPE, LABEL, ORDER, ORDERLABEL), each file pointer naming
//! the file by the path in its CONTENTIDS (or FILEID) made to point at that file's entry in
//! the fileSec.

use std::collections::HashMap;
use std::io::{self, Write};

use uuid::Uuid;

use crate::record::xml::esc;

/// Divisions nested deeper than this are left out (a structural map is a book's chapters,
/// not a recursion test), with a warning.
const MAX_DEPTH: usize = 64;

/// Writes the structMaps of `xml`, numbered from `first_number`, pointing at `files`
/// (transfer path → file UUID). A file that is not XML, or has no structMap, adds nothing:
/// the file itself is kept in the AIP either way.
pub fn write_struct_maps(
    out: &mut dyn Write,
    xml: &str,
    files: &HashMap<String, Uuid>,
    first_number: usize,
) -> io::Result<()> {
    let doc = match roxmltree::Document::parse(xml) {
        Ok(doc) => doc,
        Err(e) => {
            tracing::warn!(error = %e, "metadata/mets_structmap.xml is not XML: it is kept, not used");
            return Ok(());
        }
    };
    let maps = doc.descendants().filter(|n| n.is_element() && n.tag_name().name() == "structMap");
    for (i, map) in maps.enumerate() {
        // METS holds one top division a structMap; the first is taken.
        let Some(top) = map.children().find(|c| c.is_element() && c.tag_name().name() == "div") else { continue };
        write!(
            out,
            "<mets:structMap TYPE=\"{}\" ID=\"structMap_{}\"",
            esc(map.attribute("TYPE").unwrap_or("logical")),
            first_number + i
        )?;
        if let Some(label) = map.attribute("LABEL") {
            write!(out, " LABEL=\"{}\"", esc(label))?;
        }
        writeln!(out, ">")?;
        write_div(out, top, files, 0)?;
        writeln!(out, "</mets:structMap>")?;
    }
    Ok(())
}

fn write_div(
    out: &mut dyn Write,
    div: roxmltree::Node<'_, '_>,
    files: &HashMap<String, Uuid>,
    depth: usize,
) -> io::Result<()> {
    write!(out, "<mets:div")?;
    for attribute in ["TYPE", "LABEL", "ORDER", "ORDERLABEL"] {
        if let Some(v) = div.attribute(attribute) {
            write!(out, " {attribute}=\"{}\"", esc(v))?;
        }
    }
    writeln!(out, ">")?;
    for child in div.children().filter(|c| c.is_element()) {
        match child.tag_name().name() {
            "fptr" => {
                let path = child.attribute("CONTENTIDS").or(child.attribute("FILEID")).unwrap_or("").trim();
                match files.get(path) {
                    Some(uuid) => writeln!(out, "<mets:fptr FILEID=\"file-{uuid}\" CONTENTIDS=\"{}\"/>", esc(path))?,
                    None => tracing::warn!(path, "mets_structmap.xml points at a file the transfer does not hold"),
                }
            }
            "div" if depth < MAX_DEPTH => write_div(out, child, files, depth + 1)?,
            "div" => tracing::warn!(depth, "mets_structmap.xml nests divisions deeper than Vellum keeps"),
            _ => {}
        }
    }
    writeln!(out, "</mets:div>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divisions_are_kept_and_pointers_name_the_files() {
        let xml = r#"<?xml version="1.0"?><mets:mets xmlns:mets="http://www.loc.gov/METS/">
            <mets:structMap TYPE="logical"><mets:div TYPE="book" LABEL="A &amp; B">
              <mets:div TYPE="page" LABEL="Cover" ORDER="1"><mets:fptr FILEID="F1" CONTENTIDS="objects/cover.jpg"/></mets:div>
              <mets:div TYPE="page" LABEL="Lost"><mets:fptr FILEID="F2" CONTENTIDS="objects/nowhere.jpg"/></mets:div>
            </mets:div></mets:structMap></mets:mets>"#;
        let cover = Uuid::from_u128(7);
        let files = HashMap::from([("objects/cover.jpg".to_string(), cover)]);
        let mut out = Vec::new();
        write_struct_maps(&mut out, xml, &files, 2).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("<mets:structMap TYPE=\"logical\" ID=\"structMap_2\">"), "{text}");
        assert!(text.contains("<mets:div TYPE=\"book\" LABEL=\"A &amp; B\">"));
        assert!(text.contains(&format!("<mets:fptr FILEID=\"file-{cover}\" CONTENTIDS=\"objects/cover.jpg\"/>")));
        assert!(!text.contains("nowhere"), "a pointer at no file is left out");
        let mut none = Vec::new();
        write_struct_maps(&mut none, "not xml", &files, 2).unwrap();
        assert!(none.is_empty());
    }
}
