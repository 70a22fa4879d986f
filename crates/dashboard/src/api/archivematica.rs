//! Archivematica's dashboard API, as its clients (amclient, Wellcome's scripts) call it:
//! the same paths, field names, status words and error bodies. A Vellum transfer is one
//! record for Archivematica's two units: the transfer (its id) and the SIP (its
//! `sip_uuid`); it is COMPLETE for both once its AIP is stored.

use base64::Engine;
use serde_json::{json, Value};
use uuid::Uuid;
use vellum_core::model::{Job, Task, Transfer, TransferStatus};
use vellum_core::operations::access::User;
use vellum_core::ports::{PortResult, TransferQuery};

use crate::http::{Request, Response};
use crate::routes::{Route, Unit};
use crate::Dashboard;

fn unit_type(unit: Unit) -> &'static str {
    match unit {
        Unit::Transfer => "unitTransfer",
        Unit::Ingest => "unitSIP",
    }
}

fn unit_id(t: &Transfer, unit: Unit) -> Uuid {
    match unit {
        Unit::Transfer => t.id,
        Unit::Ingest => t.sip_uuid,
    }
}

fn find(d: &Dashboard, unit: Unit, id: Uuid) -> PortResult<Option<Transfer>> {
    match unit {
        Unit::Transfer => d.state.transfer(id),
        Unit::Ingest => d.state.transfer_by_sip(id),
    }
}

/// A transfer or SIP by either of its ids, as `v2beta/jobs` takes them.
fn find_any(d: &Dashboard, id: Uuid) -> PortResult<Option<Transfer>> {
    match d.state.transfer(id)? {
        Some(t) => Ok(Some(t)),
        None => d.state.transfer_by_sip(id),
    }
}

pub fn answer(d: &Dashboard, route: &Route, request: &Request, user: &User) -> PortResult<Response> {
    let mut response = match route {
        Route::AmStatus(unit, id) => status(d, *unit, *id)?,
        Route::AmCompleted(unit) => {
            let results: Vec<Uuid> = completed(d)?.iter().map(|t| unit_id(t, *unit)).collect();
            let what = if *unit == Unit::Transfer { "transfers" } else { "ingests" };
            Response::json(
                200,
                &json!({"message": format!("Fetched completed {what} successfully."), "results": results}),
            )
        }
        // Vellum never waits for a person: nothing is ever unapproved or waiting.
        Route::AmUnapproved => {
            Response::json(200, &json!({"message": "Fetched unapproved transfers successfully.", "results": []}))
        }
        Route::AmWaiting => Response::json(200, &json!({"message": "Fetched units successfully.", "results": []})),
        Route::AmHide(unit, id) => match find(d, *unit, *id)? {
            Some(t) if d.state.hide_transfer(t.id)? => Response::json(200, &json!({"removed": true})),
            _ => Response::json(409, &json!({"removed": false})),
        },
        Route::AmHideCompleted(unit) => {
            let mut removed = Vec::new();
            for t in completed(d)? {
                if d.state.hide_transfer(t.id)? {
                    removed.push(unit_id(&t, *unit));
                }
            }
            Response::json(200, &json!({"removed": removed}))
        }
        Route::AmJobs(id) => jobs(d, *id, request)?,
        Route::AmTask(id) => match d.state.task(*id)? {
            Some(task) => Response::json(200, &task_json(&task, true)),
            None => Response::error(400, format!("Task with UUID {id} does not exist")),
        },
        Route::AmProcessingConfigurations => {
            let mut names: Vec<&str> = d.config.profiles.iter().map(|p| p.name.as_str()).collect();
            names.sort();
            Response::json(200, &json!({"processing_configurations": names}))
        }
        Route::AmProcessingConfiguration(name) => processing_configuration(d, name, request),
        Route::AmPackage => package(d, request, user)?,
        _ => Response::error(404, "No such route."),
    };
    response.headers.push(("X-Archivematica-Version".into(), format!("vellum-{}", env!("CARGO_PKG_VERSION"))));
    Ok(response)
}

/// Every listed (not hidden) COMPLETE transfer.
fn completed(d: &Dashboard) -> PortResult<Vec<Transfer>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = d.state.list_transfers(&TransferQuery {
            status: Some(TransferStatus::Complete),
            after,
            limit: 500,
            ..Default::default()
        })?;
        out.extend(page.items);
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

fn status(d: &Dashboard, unit: Unit, id: Uuid) -> PortResult<Response> {
    let kind = if unit == Unit::Transfer { "transfer" } else { "SIP" };
    let Some(t) = find(d, unit, id)? else {
        return Ok(Response::json(
            400,
            &json!({"message": format!("Cannot fetch {} with UUID {id}", unit_type(unit)), "error": true, "type": kind}),
        ));
    };
    let directory = format!("{}-{id}", t.name);
    let microservice = match &t.current_microservice {
        Some(m) => m.clone(),
        None => d.state.jobs(t.id)?.last().map(|j| j.name.clone()).unwrap_or_default(),
    };
    let mut body = json!({
        "status": t.status.as_str(),
        "name": t.name,
        "microservice": microservice,
        "directory": directory,
        "path": format!("{}/{}", t.source_bucket, t.source_key),
        "message": format!("Fetched status for {id} successfully."),
        "type": kind,
        "uuid": id,
    });
    if unit == Unit::Transfer && t.status == TransferStatus::Complete {
        body["sip_uuid"] = json!(t.sip_uuid);
    }
    if let Some(reason) = &t.failure_reason {
        body["reason"] = json!(reason);
    }
    Ok(Response::json(200, &body))
}

/// A stage's chain link: fixed for the stage, so `link_uuid` filters as in Archivematica.
fn link_uuid(stage: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("https://vellum.invalid/links/{stage}").as_bytes())
}

fn time(t: &vellum_core::model::Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn task_json(task: &Task, detailed: bool) -> Value {
    let mut v = json!({"uuid": task.uuid, "exit_code": task.exit_code});
    if detailed {
        let seconds = task.ended_at.timestamp() - task.started_at.timestamp();
        v["file_uuid"] = json!(task.file_uuid);
        v["file_name"] = json!(task.file_name);
        v["time_created"] = json!(time(&task.started_at));
        v["time_started"] = json!(time(&task.started_at));
        v["time_ended"] = json!(time(&task.ended_at));
        v["duration"] = if seconds == 0 { json!("< 1") } else { json!(seconds) };
    }
    v
}

fn strip<'a>(value: &'a str, prefix: &str) -> &'a str {
    value.strip_prefix(prefix).unwrap_or(value).trim()
}

fn jobs(d: &Dashboard, id: Uuid, request: &Request) -> PortResult<Response> {
    let Some(t) = find_any(d, id)? else {
        return Ok(Response::error(400, format!("No jobs found for unit: {id}")));
    };
    let all: Vec<Job> = d.state.jobs(t.id)?;
    if all.is_empty() {
        return Ok(Response::error(400, format!("No jobs found for unit: {id}")));
    }
    let params = request.params();
    let microservice = params.get("microservice").map(|m| strip(m, "Microservice:").to_string());
    let name = params.get("name").map(|n| strip(n, "Job:").to_string());
    let link = params.get("link_uuid").map(|l| l.trim().to_string());
    let detailed = params.contains_key("detailed");
    let mut out = Vec::new();
    for job in all.iter().filter(|j| {
        microservice.as_ref().is_none_or(|m| &j.microservice_group == m)
            && name.as_ref().is_none_or(|n| &j.name == n)
            && link.as_ref().is_none_or(|l| link_uuid(&j.stage).to_string() == *l)
    }) {
        let tasks: Vec<Value> = d.state.tasks(job.uuid)?.iter().map(|t| task_json(t, detailed)).collect();
        out.push(json!({
            "uuid": job.uuid,
            "name": job.name,
            "status": job.status.as_str(),
            "microservice": job.microservice_group,
            "link_uuid": link_uuid(&job.stage),
            "tasks": tasks,
        }));
    }
    Ok(Response::json(200, &Value::Array(out)))
}

/// A profile as Archivematica's processingMCP.xml: its settings as preconfigured choices.
fn processing_configuration(d: &Dashboard, name: &str, request: &Request) -> Response {
    let accept = request.header("accept").unwrap_or("").to_lowercase();
    if accept != "*/*" && !accept.contains("xml") {
        return Response::with_type(415, "text/plain; charset=utf-8", "");
    }
    let Some(profile) = d.config.profile(name) else {
        return Response::json(
            404,
            &json!({"success": false, "error": format!("No such processing config \"{name}\".")}),
        );
    };
    let esc = |s: &str| vellum_core::record::xml::esc(s).into_owned();
    let mut choices = vec![
        ("prefix", profile.prefix.clone()),
        ("storage_space", profile.storage_space.clone()),
        ("checksum_algorithms", profile.checksum_algorithms.join(",")),
        ("virus_scan", profile.virus_scan.to_string()),
        ("format_identification", profile.format_identification.to_string()),
        ("fail_unscanned", profile.fail_unscanned.to_string()),
        ("fail_invalid", profile.fail_invalid.to_string()),
        ("supplied_checksums", profile.supplied_checksums.to_string()),
        ("gzip_level", profile.gzip_level.to_string()),
        ("batch_size", profile.batch_size.to_string()),
    ];
    choices.push(("clutter", profile.clutter.join(",")));
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<processingMCP>\n");
    xml.push_str(&format!(
        "  <!-- Vellum's profile \"{}\": packages uploaded under {} -->\n  <preconfiguredChoices>\n",
        esc(&profile.name).replace("--", "- -"),
        esc(&profile.prefix).replace("--", "- -")
    ));
    for (setting, value) in choices {
        xml.push_str(&format!(
            "    <preconfiguredChoice>\n      <appliesTo>{}</appliesTo>\n      <goToChain>{}</goToChain>\n    </preconfiguredChoice>\n",
            esc(setting),
            esc(&value)
        ));
    }
    // The switches again in Archivematica's own terms, which a transfer's processingMCP.xml
    // may carry back to Vellum (`intake::processing`).
    for (applies_to, chain) in vellum_core::intake::processing::archivematica_choices(&profile.switches()) {
        xml.push_str(&format!(
            "    <preconfiguredChoice>\n      <appliesTo>{applies_to}</appliesTo>\n      <goToChain>{chain}</goToChain>\n    </preconfiguredChoice>\n"
        ));
    }
    xml.push_str("  </preconfiguredChoices>\n</processingMCP>\n");
    Response::with_type(200, "text/xml", xml)
}

/// `v2beta/package`: starts a transfer of an object already in the uploads bucket, named by
/// `path` (base64; a `<location uuid>:` prefix, as amclient sends, is dropped).
fn package(d: &Dashboard, request: &Request, user: &User) -> PortResult<Response> {
    if request.method != "POST" {
        return Ok(Response::with_type(501, "text/plain; charset=utf-8", "Not implemented"));
    }
    let payload: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let path = payload
        .get("path")
        .and_then(Value::as_str)
        .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let Some(path) = path else {
        return Ok(Response::error(400, "Parameter \"path\" cannot be decoded."));
    };
    let key = match path.split_once(':') {
        Some((location, rest)) if Uuid::parse_str(location).is_ok() => rest,
        _ => path.as_str(),
    };
    let key = key.trim_start_matches('/');
    Ok(match crate::api::json::start_key(d, key, user)? {
        Ok(id) => Response::json(202, &json!({"id": id})),
        Err(refused) => {
            let why = refused.json_body()["message"].as_str().unwrap_or("").to_string();
            Response::error(400, format!("Package cannot be created: {why}"))
        }
    })
}
