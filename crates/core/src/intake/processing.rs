//! A transfer's own processing configuration: Archivematica's `processingMCP.xml`, whose
//! preconfigured choices name a decision point of Archivematica's workflow (`appliesTo`)
//! and the chain taken there (`goToChain`). The choices a Vellum profile has a switch for
//! override the profile for that transfer; the rest are Archivematica's own business.

use std::collections::BTreeMap;

/// A decision point Vellum has a switch for: its Archivematica link ids, and what each
/// chain taken there sets (switch name → on or off).
struct DecisionPoint {
    links: &'static [&'static str],
    chains: &'static [(&'static str, &'static [(&'static str, bool)])],
}

const PRESERVATION_AND_ACCESS: &[(&str, bool)] =
    &[("normalize_for_preservation", true), ("normalize_for_access", true)];
const PRESERVATION_ONLY: &[(&str, bool)] = &[("normalize_for_preservation", true), ("normalize_for_access", false)];
const ACCESS_ONLY: &[(&str, bool)] = &[("normalize_for_preservation", false), ("normalize_for_access", true)];
const NO_NORMALIZATION: &[(&str, bool)] = &[("normalize_for_preservation", false), ("normalize_for_access", false)];

/// From Archivematica's workflow (`src/MCPServer/lib/assets/workflow.json`) and its
/// dashboard's processing configuration fields.
const DECISION_POINTS: &[DecisionPoint] = &[
    DecisionPoint {
        // Normalize (at ingest, and its twin after manual normalization was offered).
        links: &["cb8e5706-e73f-472f-ad9b-d1236af8095f", "7509e7dc-1e1b-4dce-8d21-e130515fce73"],
        chains: &[
            ("b93cecd4-71f2-4e28-bc39-d32fd62c5a94", PRESERVATION_AND_ACCESS),
            ("612e3609-ce9a-4df6-a9a3-63d634d2d934", PRESERVATION_ONLY),
            ("fb7a326e-1e50-4b48-91b9-4917ff8d0ae8", ACCESS_ONLY),
            // Normalize service files for access: Vellum has no service files, so access.
            ("e600b56d-1a43-4031-9d7c-f64f123e5662", ACCESS_ONLY),
            // Normalize manually: Vellum has no manual normalization; nothing is made.
            ("c34bd22a-d077-4180-bf58-01db35bdb644", NO_NORMALIZATION),
            ("89cb80dd-0636-464f-930d-57b61e3928b2", NO_NORMALIZATION),
            ("e8544c5e-9cbb-4b8f-a68b-6d9b4d7f7362", NO_NORMALIZATION),
        ],
    },
    DecisionPoint {
        links: &["498f7a6d-1b8c-431a-aa5d-83f14f3c5e65"],
        chains: &[
            ("c318b224-b718-4535-a911-494b1af6ff26", &[("thumbnails", true)]),
            ("972fce6c-52c8-4c00-99b9-d6814e377974", &[("thumbnails", false)]),
        ],
    },
    DecisionPoint {
        links: &["dec97e3c-5598-4b99-b26e-f87a435a6b7f"],
        chains: &[
            ("01d80b27-4ad1-4bd1-8f8d-f819f18bf685", &[("extract_packages", true)]),
            ("79f1f5af-7694-48a4-b645-e42790bbf870", &[("extract_packages", false)]),
        ],
    },
    DecisionPoint {
        links: &["82ee9ad2-2c74-4c7c-853e-e4eaf68fc8b6"],
        chains: &[
            ("35151db8-3a11-4b49-8865-f6697ef0ac75", &[("transcribe", true)]),
            ("0a24787c-00e3-4710-b324-90e792bfb484", &[("transcribe", false)]),
        ],
    },
    DecisionPoint {
        links: &["5e58066d-e113-4383-b20b-f301ed4d751c"],
        chains: &[
            ("8d29eb3d-a8a8-4347-806e-3d8227ed44a1", &[("store_dip", true)]),
            ("4500f34e-f004-4ccf-8720-5c38d0be2254", &[("store_dip", false)]),
        ],
    },
    DecisionPoint {
        // Virus scanning, asked at five points of the workflow with one answer.
        links: &[
            "856d2d65-cd25-49fa-8da9-cabb78292894",
            "1dad74a2-95df-4825-bbba-dca8b91d2371",
            "7e81f94e-6441-4430-a12d-76df09181b66",
            "390d6507-5029-4dae-bcd4-ce7178c9b560",
            "97a5ddc0-d4e0-43ac-a571-9722405a0a9b",
        ],
        chains: &[
            ("6e431096-c403-4cbf-a59a-a26e86be54a8", &[("virus_scan", true)]),
            ("1ac7d792-b63f-46e0-9945-d48d9e5c02c9", &[("virus_scan", true)]),
            ("97be337c-ff27-4869-bf63-ef1abc9df15d", &[("virus_scan", true)]),
            ("34944d4f-762e-4262-8c79-b9fd48521ca0", &[("virus_scan", true)]),
            ("3e8c0c39-3f30-4c9b-a449-85eef1b2a458", &[("virus_scan", true)]),
            ("63767e4b-9ce8-4fe2-8724-65cc1f763de0", &[("virus_scan", false)]),
            ("697c0883-798d-4af7-b8b6-101c7f709cd5", &[("virus_scan", false)]),
            ("77355172-b437-4324-9dcc-e2607ad27cb1", &[("virus_scan", false)]),
            ("63be6081-bee8-4cf5-a453-91893e31940f", &[("virus_scan", false)]),
            ("7f5244fe-590b-4e38-beaf-0cf1ccb9e71b", &[("virus_scan", false)]),
        ],
    },
    DecisionPoint {
        // Perform file format identification (transfer).
        links: &["f09847c2-ee51-429a-9478-a860477f6b8d"],
        chains: &[
            ("d97297c7-2b49-4cfe-8c9f-0613d63ed763", &[("format_identification", true)]),
            ("1f77af0a-2f7a-468f-af8c-653a9e61ca4f", &[("format_identification", false)]),
        ],
    },
];

/// The switches a `processingMCP.xml` sets, by the profile field they override. Choices at
/// decision points Vellum has no switch for are left to the profile; a file that is not
/// a processing configuration is refused with why.
pub fn choices(xml: &[u8]) -> Result<BTreeMap<String, bool>, String> {
    let text = std::str::from_utf8(xml).map_err(|_| "it is not UTF-8 text".to_string())?;
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("it is not well-formed XML ({e})"))?;
    if doc.root_element().tag_name().name() != "processingMCP" {
        return Err(format!("its root element is <{}>, not <processingMCP>", doc.root_element().tag_name().name()));
    }
    let mut set = BTreeMap::new();
    for choice in doc.descendants().filter(|n| n.has_tag_name("preconfiguredChoice")) {
        let child = |name: &str| {
            choice.children().find(|c| c.has_tag_name(name)).and_then(|c| c.text()).map(str::trim).unwrap_or("")
        };
        let (applies_to, chain) = (child("appliesTo"), child("goToChain"));
        let Some(point) = DECISION_POINTS.iter().find(|p| p.links.contains(&applies_to)) else { continue };
        let Some((_, switches)) = point.chains.iter().find(|(c, _)| *c == chain) else { continue };
        for (switch, on) in *switches {
            set.insert(switch.to_string(), *on);
        }
    }
    Ok(set)
}

/// The profile's switches as Archivematica's preconfigured choices (a decision point's
/// link and the chain that does what the switches say), so that a processing
/// configuration read from Vellum means the same when a transfer brings it back.
pub fn archivematica_choices(switches: &BTreeMap<String, bool>) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    for point in DECISION_POINTS {
        // The chain whose every switch the profile has, set as it has it.
        let chain = point.chains.iter().find(|(_, sets)| sets.iter().all(|(k, v)| switches.get(*k) == Some(v)));
        if let Some((chain, _)) = chain {
            out.push((point.links[0], *chain));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut xml = String::from("<processingMCP>\n  <preconfiguredChoices>\n");
        for (applies_to, chain) in pairs {
            xml.push_str(&format!(
                "    <preconfiguredChoice>\n      <appliesTo>{applies_to}</appliesTo>\n      <goToChain>{chain}</goToChain>\n    </preconfiguredChoice>\n"
            ));
        }
        xml.push_str("  </preconfiguredChoices>\n</processingMCP>\n");
        xml.into_bytes()
    }

    #[test]
    fn archivematicas_choices_become_profile_switches() {
        let set = choices(&config(&[
            // Normalize for preservation only; no thumbnails; do not store the DIP.
            ("cb8e5706-e73f-472f-ad9b-d1236af8095f", "612e3609-ce9a-4df6-a9a3-63d634d2d934"),
            ("498f7a6d-1b8c-431a-aa5d-83f14f3c5e65", "972fce6c-52c8-4c00-99b9-d6814e377974"),
            ("5e58066d-e113-4383-b20b-f301ed4d751c", "4500f34e-f004-4ccf-8720-5c38d0be2254"),
            // A compression level: Archivematica's concern, not a Vellum switch.
            ("01c651cb-c174-4ba4-b985-1d87a44d6754", "414da421-b83f-4648-895f-a34840e3c3f5"),
        ]))
        .unwrap();
        let want: BTreeMap<String, bool> = [
            ("normalize_for_access", false),
            ("normalize_for_preservation", true),
            ("store_dip", false),
            ("thumbnails", false),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(set, want);
    }

    #[test]
    fn a_profiles_switches_read_back_as_the_same_choices() {
        let switches: BTreeMap<String, bool> = [
            ("normalize_for_preservation", true),
            ("normalize_for_access", false),
            ("thumbnails", true),
            ("extract_packages", false),
            ("transcribe", true),
            ("store_dip", true),
            ("virus_scan", false),
            ("format_identification", true),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let pairs: Vec<(&str, &str)> = archivematica_choices(&switches);
        assert_eq!(pairs.len(), 7, "one choice per decision point: {pairs:?}");
        assert_eq!(choices(&config(&pairs)).unwrap(), switches);
    }

    #[test]
    fn a_file_that_is_no_processing_configuration_is_named() {
        assert!(choices(b"<processingMCP><preconfiguredChoices>").unwrap_err().contains("not well-formed"));
        assert!(choices(b"<mets/>").unwrap_err().contains("<mets>"));
        assert!(choices(b"\xff\xfe<").unwrap_err().contains("UTF-8"));
        assert_eq!(choices(b"<processingMCP/>").unwrap(), BTreeMap::new());
    }
}
