//! A transfer's own PREMIS (`metadata/premis.xml`), read as Archivematica's PREMIS importer
//! reads it: the events another repository recorded for a file, found through the object
//! whose `originalName` is the file's (by the object's `linkingEventIdentifier`s, or the
//! event's `linkingObjectIdentifier`s), and the agents those events name. Vellum writes
//! them into the file's amdSec beside its own, under their own identifiers.

use std::collections::BTreeMap;

/// One event as the other repository recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportedEvent {
    pub identifier: (String, String),
    pub event_type: String,
    pub date_time: String,
    pub detail: String,
    pub outcome: String,
    pub outcome_detail: String,
    /// The agents it names: (identifier type, identifier value).
    pub agents: Vec<(String, String)>,
}

/// An agent the other repository described.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportedAgent {
    pub identifier: (String, String),
    pub name: String,
    pub agent_type: String,
}

/// What a transfer's premis.xml says about its files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportedPremis {
    /// Each file's events (indexes into `events`), by the file's name in the transfer
    /// (`objects/<path>`).
    pub by_file: BTreeMap<String, Vec<usize>>,
    pub events: Vec<ImportedEvent>,
    pub agents: Vec<ImportedAgent>,
}

impl ImportedPremis {
    /// The events recorded for the file of this name, with the agents they name.
    pub fn of(&self, name: &str) -> (Vec<&ImportedEvent>, Vec<&ImportedAgent>) {
        let events: Vec<&ImportedEvent> =
            self.by_file.get(name).into_iter().flatten().map(|&i| &self.events[i]).collect();
        let agents = self.agents.iter().filter(|a| events.iter().any(|e| e.agents.contains(&a.identifier))).collect();
        (events, agents)
    }
}

fn text_of(node: roxmltree::Node<'_, '_>, path: &[&str]) -> String {
    let mut at = Some(node);
    for name in path {
        at = at.and_then(|n| n.children().find(|c| c.is_element() && c.tag_name().name() == *name));
    }
    at.and_then(|n| n.text()).map(str::trim).unwrap_or("").to_string()
}

fn identifiers(node: roxmltree::Node<'_, '_>, element: &str, kind: &str) -> Vec<(String, String)> {
    node.children()
        .filter(|c| c.is_element() && c.tag_name().name() == element)
        .map(|c| (text_of(c, &[&format!("{kind}Type")]), text_of(c, &[&format!("{kind}Value")])))
        .collect()
}

/// Reads a premis.xml; an error says why it is not PREMIS that can be read.
pub fn read(xml: &str) -> Result<ImportedPremis, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("it is not XML ({e})"))?;
    let elements =
        |name: &'static str| doc.descendants().filter(move |n| n.is_element() && n.tag_name().name() == name);
    let mut out = ImportedPremis::default();
    for e in elements("event") {
        let event_type = text_of(e, &["eventType"]);
        if event_type.is_empty() {
            continue;
        }
        let identifier = identifiers(e, "eventIdentifier", "eventIdentifier").into_iter().next().unwrap_or_default();
        out.events.push(ImportedEvent {
            identifier,
            event_type,
            date_time: text_of(e, &["eventDateTime"]),
            detail: text_of(e, &["eventDetailInformation", "eventDetail"]),
            outcome: text_of(e, &["eventOutcomeInformation", "eventOutcome"]),
            outcome_detail: text_of(e, &["eventOutcomeInformation", "eventOutcomeDetail", "eventOutcomeDetailNote"]),
            agents: identifiers(e, "linkingAgentIdentifier", "linkingAgentIdentifier"),
        });
    }
    let linked_objects: Vec<Vec<(String, String)>> = elements("event")
        .filter(|e| !text_of(*e, &["eventType"]).is_empty())
        .map(|e| identifiers(e, "linkingObjectIdentifier", "linkingObjectIdentifier"))
        .collect();
    for object in elements("object") {
        let name = text_of(object, &["originalName"]);
        let name = name.trim_start_matches("%transferDirectory%").trim_start_matches("./").to_string();
        if name.is_empty() {
            continue;
        }
        let own = identifiers(object, "objectIdentifier", "objectIdentifier");
        let linked = identifiers(object, "linkingEventIdentifier", "linkingEventIdentifier");
        let found: Vec<usize> = (0..out.events.len())
            .filter(|&i| {
                linked.contains(&out.events[i].identifier) || linked_objects[i].iter().any(|id| own.contains(id))
            })
            .collect();
        if !found.is_empty() {
            out.by_file.entry(name).or_default().extend(found);
        }
    }
    for a in elements("agent") {
        let identifier = identifiers(a, "agentIdentifier", "agentIdentifier").into_iter().next().unwrap_or_default();
        out.agents.push(ImportedAgent {
            identifier,
            name: text_of(a, &["agentName"]),
            agent_type: text_of(a, &["agentType"]),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREMIS: &str = r#"<premis:premis xmlns:premis="http://www.loc.gov/premis/v3" version="3.0">
      <premis:object><premis:objectIdentifier><premis:objectIdentifierType>hdl</premis:objectIdentifierType><premis:objectIdentifierValue>hdl:1</premis:objectIdentifierValue></premis:objectIdentifier>
        <premis:originalName>
          objects/bird.mp3
        </premis:originalName>
        <premis:linkingEventIdentifier><premis:linkingEventIdentifierType>NRI</premis:linkingEventIdentifierType><premis:linkingEventIdentifierValue>E1</premis:linkingEventIdentifierValue></premis:linkingEventIdentifier>
      </premis:object>
      <premis:event><premis:eventIdentifier><premis:eventIdentifierType>NRI</premis:eventIdentifierType><premis:eventIdentifierValue>E1</premis:eventIdentifierValue></premis:eventIdentifier>
        <premis:eventType>virus check</premis:eventType><premis:eventDateTime>2019-07-04T22:46:07</premis:eventDateTime>
        <premis:eventOutcomeInformation><premis:eventOutcome>Pass</premis:eventOutcome></premis:eventOutcomeInformation>
        <premis:linkingAgentIdentifier><premis:linkingAgentIdentifierType>repository code</premis:linkingAgentIdentifierType><premis:linkingAgentIdentifierValue>NRI</premis:linkingAgentIdentifierValue></premis:linkingAgentIdentifier>
      </premis:event>
      <premis:event><premis:eventIdentifier><premis:eventIdentifierType>NRI</premis:eventIdentifierType><premis:eventIdentifierValue>E2</premis:eventIdentifierValue></premis:eventIdentifier>
        <premis:eventType>ingestion</premis:eventType><premis:eventDateTime>2019</premis:eventDateTime>
        <premis:linkingObjectIdentifier><premis:linkingObjectIdentifierType>hdl</premis:linkingObjectIdentifierType><premis:linkingObjectIdentifierValue>hdl:1</premis:linkingObjectIdentifierValue></premis:linkingObjectIdentifier>
      </premis:event>
      <premis:agent><premis:agentIdentifier><premis:agentIdentifierType>repository code</premis:agentIdentifierType><premis:agentIdentifierValue>NRI</premis:agentIdentifierValue></premis:agentIdentifier><premis:agentName>Not a Real Institution</premis:agentName><premis:agentType>organization</premis:agentType></premis:agent>
    </premis:premis>"#;

    #[test]
    fn a_files_events_are_found_both_ways_with_their_agents() {
        let p = read(PREMIS).unwrap();
        let (events, agents) = p.of("objects/bird.mp3");
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(types, ["virus check", "ingestion"]);
        assert_eq!(events[0].outcome, "Pass");
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[0].name, "Not a Real Institution");
        assert!(p.of("objects/other.txt").0.is_empty());
        assert!(read("<premis").is_err());
    }
}
