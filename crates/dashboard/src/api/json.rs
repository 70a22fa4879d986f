//! Vellum's JSON API (described by `openapi.json`, served at `/api/openapi.json`): the
//! transfer list, a transfer with its jobs and progress, its files and PREMIS events, and
//! the few things a person may do — start, retry, hide.

use serde_json::{json, Value};
use uuid::Uuid;
use vellum_core::model::messages::UploadEvent;
use vellum_core::model::Stage;
use vellum_core::model::{File, Job, PremisEvent, Transfer, TransferStatus};
use vellum_core::operations::access::User;
use vellum_core::ports::{PortResult, TransferQuery};

use crate::http::{Request, Response};
use crate::routes::Route;
use crate::Dashboard;

pub const OPENAPI: &str = include_str!("openapi.json");

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;

fn page_size(request: &Request) -> Result<usize, Response> {
    match request.param("limit") {
        None => Ok(DEFAULT_PAGE),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(Response::error(400, format!("limit is a number from 1 to {MAX_PAGE}, not {l:?}"))),
        },
    }
}

pub fn answer(d: &Dashboard, route: &Route, request: &Request, user: &User) -> PortResult<Response> {
    Ok(match route {
        Route::Status => kept(d, request, || Ok(Ok(status(d)?)))?,
        Route::OpenApi => Response::with_type(200, "application/json", OPENAPI),
        Route::Transfers => kept(d, request, || list(d, request))?,
        Route::StartTransfer => start(d, request, user)?,
        // What the dashboard's pages poll, every few seconds for each transfer in progress.
        Route::Transfer(id) => {
            kept(d, request, || Ok(detail(d, *id)?.ok_or_else(|| Response::error(404, "no such transfer"))))?
        }
        Route::TransferFiles(id) => match (d.state.transfer(*id)?, page_size(request)) {
            (None, _) => Response::error(404, "no such transfer"),
            (_, Err(r)) => r,
            (Some(t), Ok(limit)) => Response::json(200, &files(d, &t, request.param("cursor").as_deref(), limit)?),
        },
        Route::TransferEvents(id) => match (d.state.transfer(*id)?, page_size(request)) {
            (None, _) => Response::error(404, "no such transfer"),
            (_, Err(r)) => r,
            (Some(t), Ok(limit)) => {
                let page = d.state.events(t.id, request.param("cursor").as_deref(), limit)?;
                Response::json(
                    200,
                    &json!({"events": page.items.iter().map(event_json).collect::<Vec<_>>(), "next": page.next}),
                )
            }
        },
        Route::Retry(id) => match vellum_core::operations::retry::retry(d.state.as_ref(), d.queue.as_ref(), *id)? {
            Ok(r) => {
                tracing::info!(user = %user.name, transfer_id = %id, "retry asked for");
                Response::json(
                    202,
                    &json!({"id": id, "stage": r.stage, "microservice": r.microservice, "messages": r.messages}),
                )
            }
            Err(vellum_core::operations::retry::NotRetried::NoSuchTransfer) => Response::error(404, "no such transfer"),
            Err(why) => Response::error(409, why.to_string()),
        },
        Route::Hide(id) => match d.state.transfer(*id)? {
            None => Response::error(404, "no such transfer"),
            Some(_) => {
                let hidden = d.state.hide_transfer(*id)?;
                Response::json(if hidden { 200 } else { 409 }, &json!({"hidden": hidden}))
            }
        },
        Route::HideCompleted => Response::json(200, &json!({"hidden": hide_ended(d)?})),
        Route::Users => Response::json(200, &users(d)?),
        _ => Response::error(404, "no such route"),
    })
}

/// A JSON answer many readers ask for, from the dashboard's answer cache: only a 200 is kept.
fn kept(
    d: &Dashboard,
    request: &Request,
    read: impl FnOnce() -> PortResult<Result<Value, Response>>,
) -> PortResult<Response> {
    let answer = d.answers.answer_unless(&request.target(), || {
        PortResult::Ok(read()?.map(|value| serde_json::to_vec(&value).expect("JSON values serialize")))
    })?;
    Ok(answer.map_or_else(|refusal| refusal, |body| Response::with_type(200, "application/json", body)))
}

/// The newest transfers and every queue's depth.
/// Who may use the dashboard, with their role and their keys by id (never a digest).
fn users(d: &Dashboard) -> PortResult<Value> {
    let keys = d.access.api_keys()?;
    let users = d.access.users()?;
    let key_json = |user: &str| -> Vec<Value> {
        keys.iter()
            .filter(|k| k.user == user)
            .map(|k| json!({"id": k.id, "created_at": k.created_at, "revoked_at": k.revoked_at}))
            .collect()
    };
    let users: Vec<Value> = users
        .iter()
        .map(|u| {
            json!({"name": u.name, "role": u.role.name(), "email": u.email,
                   "created_at": u.created_at, "api_keys": key_json(&u.name)})
        })
        .collect();
    Ok(json!({ "users": users }))
}

fn status(d: &Dashboard) -> PortResult<Value> {
    let transfers = d.state.list_transfers(&TransferQuery { limit: 100, ..Default::default() })?.items;
    let mut depths = serde_json::Map::new();
    for q in Stage::ALL {
        depths.insert(
            q.to_string(),
            json!({"messages": d.queue.depth(q.name())?, "dead_letters": d.queue.dead_letter_count(q.name())?}),
        );
    }
    let refused = d.throttle.refusals();
    // Since this process started: on AWS the metric `Vellum/RefusedCredentials` sums them.
    let access = json!({"wrong_credentials": refused.wrong_credentials, "throttled": refused.throttled});
    Ok(json!({ "transfers": transfers, "queues": depths, "access": access }))
}

/// A transfer as the list shows it.
pub fn summary(t: &Transfer) -> Value {
    // The field names of `vellum ingest --json` (transfer_id, reason, …), and `id` too.
    json!({
        "id": t.id,
        "transfer_id": t.id,
        "aip_uuid": t.aip_uuid,
        "reason": t.failure_reason,
        "name": t.name,
        "status": t.status.as_str(),
        "microservice": t.current_microservice,
        "sip_uuid": t.sip_uuid,
        "identifier": t.identifiers.external_identifier(),
        "profile": t.profile,
        "source_key": t.source_key,
        "file_count": t.file_count,
        "failure_reason": t.failure_reason,
        "aip_key": t.aip_key,
        "dip": t.dip_key,
        "files_not_normalized": t.files_not_normalized,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "completed_at": t.completed_at,
        "hidden": t.hidden,
    })
}

fn list(d: &Dashboard, request: &Request) -> PortResult<Result<Value, Response>> {
    let limit = match page_size(request) {
        Ok(l) => l,
        Err(r) => return Ok(Err(r)),
    };
    let status = match request.param("status").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match TransferStatus::parse(&s.to_uppercase()) {
            Some(st) => Some(st),
            None => {
                return Ok(Err(Response::error(
                    400,
                    format!("status is PROCESSING, COMPLETE, FAILED or REJECTED, not {s:?}"),
                )))
            }
        },
    };
    let query = TransferQuery {
        status,
        search: request.param("q").filter(|q| !q.trim().is_empty()).map(|q| q.trim().to_string()),
        hidden: request.param("hidden").is_some_and(|h| h == "true" || h == "1"),
        after: request.param("cursor").filter(|c| !c.is_empty()),
        limit,
    };
    let page = match d.state.list_transfers(&query) {
        Err(vellum_core::ports::PortError::Refused(why)) => return Ok(Err(Response::error(400, why))),
        other => other?,
    };
    Ok(Ok(json!({"transfers": page.items.iter().map(summary).collect::<Vec<_>>(), "next": page.next})))
}

/// A job with its timing and, for the per-file stages, how far it is.
pub fn job_json(j: &Job, t: &Transfer, tasks: Option<(usize, usize)>) -> Value {
    let per_file = j.stage.parse::<Stage>().is_ok_and(Stage::is_per_file);
    json!({
        "uuid": j.uuid,
        "stage": j.stage,
        "name": j.name,
        "microservice": j.microservice_group,
        "status": j.status.as_str(),
        "started_at": j.started_at,
        "ended_at": j.ended_at,
        "duration_seconds": j.ended_at.map(|e| (e - j.started_at).num_milliseconds() as f64 / 1000.0),
        "batches_done": if per_file { Some(j.batches_done) } else { None },
        "batches": if per_file { Some(t.batch_count) } else { None },
        "tasks": tasks.map(|(total, failed)| json!({"total": total, "failed": failed})),
    })
}

/// Every stage in order, with the job that ran it (if it has run).
pub fn progress(jobs: &[Job], t: &Transfer) -> Vec<Value> {
    Stage::ALL
        .into_iter()
        .map(|stage| {
            let job = jobs.iter().find(|j| j.stage == stage.name());
            let per_file = stage.is_per_file();
            json!({
                "stage": stage.name(),
                "microservice": stage.job_name(),
                "status": job.map(|j| j.status.as_str()).unwrap_or("WAITING"),
                "batches_done": if per_file { job.map(|j| j.batches_done) } else { None },
                "batches": if per_file { Some(t.batch_count) } else { None },
            })
        })
        .collect()
}

/// A transfer by its own id, its SIP's or its AIP's.
pub fn find_any(d: &Dashboard, id: Uuid) -> PortResult<Option<Transfer>> {
    if let Some(t) = d.state.transfer(id)? {
        return Ok(Some(t));
    }
    if let Some(t) = d.state.transfer_by_sip(id)? {
        return Ok(Some(t));
    }
    d.state.transfer_by_aip(id)
}

fn detail(d: &Dashboard, id: Uuid) -> PortResult<Option<Value>> {
    let Some(t) = find_any(d, id)? else {
        return Ok(None);
    };
    let id = t.id;
    let jobs = d.state.jobs(id)?;
    let mut shown = Vec::new();
    for j in &jobs {
        let tasks = d.state.tasks(j.uuid)?;
        let failed = tasks.iter().filter(|t| t.exit_code != 0).count();
        shown.push(job_json(j, &t, Some((tasks.len(), failed))));
    }
    Ok(Some(json!({
        "transfer": t,
        "summary": summary(&t),
        "jobs": shown,
        "progress": progress(&jobs, &t),
        "failure_reason": t.failure_reason,
    })))
}

/// An event's outcome as the record writes it (`pass`, `fail`, …).
pub fn outcome_word(e: &PremisEvent) -> String {
    serde_json::to_value(e.outcome).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// What the virus check said of a file, from its events.
pub fn scan_verdict(events: &[PremisEvent]) -> Option<String> {
    events.iter().rev().find(|e| e.event_type == "virus check").map(|e| {
        let outcome = outcome_word(e);
        if e.outcome_detail.is_empty() {
            outcome
        } else {
            format!("{outcome}: {}", e.outcome_detail)
        }
    })
}

pub fn file_json(f: &File, events: &[PremisEvent]) -> Value {
    json!({
        "uuid": f.uuid,
        "name": f.current_path,
        "original_name": f.original_path,
        "size": f.size,
        "checksums": f.checksums,
        "puid": f.format.as_ref().map(|x| x.puid.clone()),
        "format": f.format.as_ref().map(|x| x.name.clone()),
        "scan": scan_verdict(events),
        "use": f.file_use,
    })
}

pub fn files(d: &Dashboard, t: &Transfer, cursor: Option<&str>, limit: usize) -> PortResult<Value> {
    let page = d.state.files(t.id, cursor, limit)?;
    let mut out = Vec::with_capacity(page.items.len());
    for f in &page.items {
        out.push(file_json(f, &d.state.file_events(t.id, f.uuid)?));
    }
    Ok(json!({"files": out, "next": page.next}))
}

pub fn event_json(e: &PremisEvent) -> Value {
    serde_json::to_value(e).unwrap_or(Value::Null)
}

/// Hides every ended transfer still listed; returns their ids.
pub fn hide_ended(d: &Dashboard) -> PortResult<Vec<Uuid>> {
    let mut hidden = Vec::new();
    let mut after = None;
    loop {
        let page = d.state.list_transfers(&TransferQuery { after, limit: 200, ..Default::default() })?;
        for t in page.items.iter().filter(|t| t.status != TransferStatus::Processing) {
            if d.state.hide_transfer(t.id)? {
                hidden.push(t.id);
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(hidden),
        }
    }
}

/// Starts a transfer of an object already in the uploads bucket: `{"key": "born-digital/x.zip"}`.
fn start(d: &Dashboard, request: &Request, user: &User) -> PortResult<Response> {
    let body: Value = match serde_json::from_slice(&request.body) {
        Ok(v) => v,
        Err(e) => return Ok(Response::error(400, format!("the body is not JSON: {e}"))),
    };
    let Some(key) = body.get("key").and_then(Value::as_str).filter(|k| !k.is_empty()) else {
        return Ok(Response::error(400, "the body names the upload: {\"key\": \"born-digital/<package>.zip\"}"));
    };
    start_key(d, key, user).map(|r| match r {
        Ok(id) => Response::json(202, &json!({"id": id})),
        Err(r) => r,
    })
}

/// Sends the start queue an upload event for `key`; the new transfer's id, or the refusal.
pub fn start_key(d: &Dashboard, key: &str, user: &User) -> PortResult<Result<Uuid, Response>> {
    let Some(meta) = d.uploads.head(key)? else {
        return Ok(Err(Response::error(
            404,
            format!("there is no {key} in the uploads bucket {}", d.uploads.bucket()),
        )));
    };
    let id = d.clock.new_id();
    let event = UploadEvent::started(d.uploads.bucket(), &meta.key, meta.size, id, d.clock.now());
    d.queue.send(Stage::Start.name(), &serde_json::to_string(&event).expect("upload events serialize"))?;
    tracing::info!(user = %user.name, key, transfer_id = %id, "transfer started through the API");
    Ok(Ok(id))
}
