//! The state store on one DynamoDB table (DESIGN.md's single-table layout):
//!
//! | item | pk | sk | indexed by |
//! | --- | --- | --- | --- |
//! | transfer | `T#<id>` | `META` | `transfers-by-time` (gsi1pk `TRANSFERS`, or `HIDDEN` once hidden; gsi1sk `<created>#<id>`) |
//! | upload event | `E#<sha256>` | `E` | (expires after 90 days: TTL `expires_at`) |
//! | job | `T#<id>` | `JOB#<stage>` | (its done batches: a number set) |
//! | file | `T#<id>` | `F#<uuid>` | |
//! | file in batch order | `T#<id>` | `B#<batch>#<entry>` | (a pointer: `file` = its uuid) |
//! | file in path order | `T#<id>` | `P#<path>` | (a pointer; a path over 1,000 bytes is cut there and `#<uuid>` added) |
//! | event | `T#<id>` | `EV#<uuid>` | (the record, with its `seq`: what makes it written once) |
//! | event in order, of a subject | `T#<id>` | `E#<seq>`, `S#<file or T>#<seq>` | (copies of the record: events never change) |
//! | task | `J#<job>` | `TASK#<uuid>` | `transfers-by-time` (gsi1pk `TASK#<uuid>`), to find one by id |
//! | SIP, AIP | `S#<sip uuid>`, `A#<aip uuid>` | `S`, `A` | (name their transfer) |
//! | AIP versions | `V#<space>#<identifier>` | `V` | |
//! | user, API key, session | `ACCESS` | `U#<name>`, `K#<digest>`, `S#<digest>` | (sessions expire: TTL `expires_at`) |
//!
//! Entities are stored field by field (serde's names; maps and lists as DynamoDB maps and
//! lists; absent options left out). Files and events are put with a condition, so a late
//! duplicate never overwrites a record a later stage changed; each operation's commit point
//! is the conditional update `ports.rs` names. Reads are consistent, except the transfer
//! list (a global index).
//!
//! No local secondary index: orders are sort keys of the table itself (pointers to files,
//! copies of events, written after the record and rewritten from it by a repeated delivery,
//! 25 to a BatchWriteItem), so no item collection has a size limit and DynamoDB may split one
//! transfer's partition by sort key when it is hot. Files listed in an order are read back
//! with consistent BatchGetItem, 100 at a time.

use std::collections::HashMap;
use vellum_core::model::Stage;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    KeysAndAttributes, Projection, ProjectionType, PutRequest, ReturnValue, ScalarAttributeType, TransactWriteItem,
    WriteRequest,
};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::runtime::Handle;
use uuid::Uuid;
use vellum_core::model::{
    CatalogueIdentifiers, File, FilePatch, Job, JobStatus, PremisEvent, StoredAip, Task, Transfer, TransferStatus,
    ValidationCounts,
};
use vellum_core::ports::{
    BatchRecorded, Clock, EventLog, ExtractCheckpoint, FileCatalogue, JobLedger, JobSpec, Page, PortError, PortResult,
    TransferOversight, TransferQuery, TransferRegister,
};

use crate::errors::port_error;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// How long an upload event's marker is kept (the table's TTL removes it after).
const MARKER_DAYS: i64 = 90;

const BY_TIME: &str = "transfers-by-time";
/// The transfer list's partitions of `transfers-by-time`: a hidden transfer moves out.
const LISTED: &str = "TRANSFERS";
const HIDDEN: &str = "HIDDEN";
/// A path longer than this many bytes is cut in its pointer's sort key: with "P#" before
/// it and "#<uuid>" after, the key keeps within DynamoDB's 1,024 bytes.
const PATH_KEY_BYTES: usize = 1024 - "P#".len() - "#".len() - 36;
/// DynamoDB's limits on one BatchWriteItem and one BatchGetItem.
const BATCH_WRITE_ITEMS: usize = 25;
const BATCH_GET_ITEMS: usize = 100;
/// DynamoDB's limits on one TransactWriteItems: 100 items, 4 MB (kept well under).
const TRANSACTION_ITEMS: usize = 100;
const TRANSACTION_BYTES: usize = 3_000_000;

/// An item's size as DynamoDB counts it, near enough: names and values.
fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// One attribute value's size, near enough.
fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::M(m) => m.iter().map(|(k, v)| k.len() + value_size(v)).sum::<usize>() + 3,
        AttributeValue::L(l) => l.iter().map(value_size).sum::<usize>() + 3,
        AttributeValue::Ss(s) | AttributeValue::Ns(s) => s.iter().map(String::len).sum(),
        _ => 1,
    }
}

/// `items` in runs that fit one transaction each.
fn transaction_chunks<T>(items: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let n = size(item);
        if i > start && (i - start == TRANSACTION_ITEMS || bytes + n > TRANSACTION_BYTES) {
            chunks.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += n;
    }
    if start < items.len() {
        chunks.push(&items[start..]);
    }
    chunks
}

/// One file's patch as an update: its expression, values and names.
struct PatchUpdate {
    sk: String,
    expression: String,
    values: Vec<(String, AttributeValue)>,
    names: Vec<(String, String)>,
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn to_attr(v: &Value) -> Option<AttributeValue> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(x) => AttributeValue::N(x.to_string()),
        Value::String(t) => AttributeValue::S(t.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().filter_map(to_attr).collect()),
        Value::Object(o) => AttributeValue::M(o.iter().filter_map(|(k, v)| Some((k.clone(), to_attr(v)?))).collect()),
    })
}

fn from_attr(a: &AttributeValue) -> PortResult<Value> {
    Ok(match a {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::S(t) => Value::String(t.clone()),
        AttributeValue::N(x) => {
            serde_json::from_str(x).map_err(|e| PortError::Corrupt(format!("{x:?} is not a number: {e}")))?
        }
        AttributeValue::L(l) => Value::Array(l.iter().map(from_attr).collect::<PortResult<_>>()?),
        AttributeValue::M(m) => {
            Value::Object(m.iter().map(|(k, v)| Ok((k.clone(), from_attr(v)?))).collect::<PortResult<_>>()?)
        }
        AttributeValue::Ns(ns) => Value::Array(
            ns.iter()
                .map(|x| serde_json::from_str(x))
                .collect::<Result<_, _>>()
                .map_err(|e| PortError::Corrupt(e.to_string()))?,
        ),
        other => return Err(PortError::Corrupt(format!("an attribute of an unexpected type: {other:?}"))),
    })
}

/// An entity's fields as attributes.
pub(crate) fn fields<T: Serialize>(entity: &T) -> Item {
    match serde_json::to_value(entity).expect("state values serialize") {
        Value::Object(o) => o.iter().filter_map(|(k, v)| Some((k.clone(), to_attr(v)?))).collect(),
        _ => Item::new(),
    }
}

/// An entity read back from its attributes; what does not read back is `Corrupt`.
pub(crate) fn entity<T: DeserializeOwned>(item: &Item, what: &str) -> PortResult<T> {
    let mut o = serde_json::Map::new();
    for (k, v) in item {
        o.insert(k.clone(), from_attr(v)?);
    }
    serde_json::from_value(Value::Object(o)).map_err(|e| PortError::Corrupt(format!("a {what} item: {e}")))
}

fn num(item: &Item, name: &str) -> PortResult<u64> {
    match item.get(name) {
        None => Ok(0),
        Some(AttributeValue::N(x)) => x.parse().map_err(|_| PortError::Corrupt(format!("{name} is {x:?}"))),
        Some(other) => Err(PortError::Corrupt(format!("{name} is {other:?}"))),
    }
}

pub(crate) fn text(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(t)) => Some(t.clone()),
        _ => None,
    }
}

fn transfer_pk(id: Uuid) -> String {
    format!("T#{id}")
}

/// Fixed width, so that text order is time order.
pub(crate) fn stamp(t: &vellum_core::model::Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub struct DynamoState {
    client: Client,
    table: String,
    rt: Handle,
    clock: std::sync::Arc<dyn Clock>,
}

pub(crate) fn failed_condition(e: &PortError) -> bool {
    matches!(e, PortError::Conflict(_))
}

impl DynamoState {
    pub fn new(client: Client, table: &str, rt: Handle, clock: std::sync::Arc<dyn Clock>) -> Self {
        Self { client, table: table.to_string(), rt, clock }
    }

    pub(crate) fn run<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Creates the table with its indexes (the template does this in AWS; tests and the
    /// emulator here).
    pub fn create_table(client: &Client, table: &str, rt: &Handle) -> PortResult<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attr")
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder().attribute_name(name).key_type(kind).build().expect("key")
        };
        let all = Projection::builder().projection_type(ProjectionType::All).build();
        let call = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(["pk", "sk", "gsi1pk", "gsi1sk"].map(attr).to_vec()))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(BY_TIME)
                    .key_schema(key("gsi1pk", KeyType::Hash))
                    .key_schema(key("gsi1sk", KeyType::Range))
                    .projection(all)
                    .build()
                    .expect("an index"),
            );
        rt.block_on(call.send()).map_err(|e| port_error(&format!("creating the table {table}"), e))?;
        Ok(())
    }

    pub(crate) fn get(&self, pk: &str, sk: &str) -> PortResult<Option<Item>> {
        let out = self
            .run(
                self.client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .key("sk", s(sk))
                    .consistent_read(true)
                    .send(),
            )
            .map_err(|e| port_error(&format!("reading {pk} {sk}"), e))?;
        Ok(out.item)
    }

    /// Puts an item unless one with its key exists; false when it did.
    pub(crate) fn put_new(&self, item: Item) -> PortResult<bool> {
        let call = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)");
        match self.run(call.send()) {
            Ok(_) => Ok(true),
            Err(e) => match port_error("writing an item", e) {
                e if failed_condition(&e) => Ok(false),
                e => Err(e),
            },
        }
    }

    /// Puts each item unless one with its key exists, up to 100 in one transaction; a run in
    /// which one exists already (a repeated delivery) is put item by item. Says which were new.
    pub(crate) fn put_all_new(&self, items: &[Item]) -> PortResult<Vec<bool>> {
        let mut new = Vec::with_capacity(items.len());
        for chunk in transaction_chunks(items, item_size) {
            if chunk.len() > 1 {
                let mut call = self.client.transact_write_items();
                for item in chunk {
                    let put = aws_sdk_dynamodb::types::Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item.clone()))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .map_err(|e| PortError::Refused(e.to_string()))?;
                    call = call.transact_items(TransactWriteItem::builder().put(put).build());
                }
                match self.run(call.send()) {
                    Ok(_) => {
                        new.extend(std::iter::repeat_n(true, chunk.len()));
                        continue;
                    }
                    Err(e) => match port_error("writing items", e) {
                        e if failed_condition(&e) => {}
                        e => return Err(e),
                    },
                }
            }
            for item in chunk {
                new.push(self.put_new(item.clone())?);
            }
        }
        Ok(new)
    }

    /// Puts `items` without conditions, 25 a request, again for whatever DynamoDB leaves
    /// unprocessed (throttled): for pointers and copies, which a repeat rewrites the same.
    pub(crate) fn put_all(&self, items: Vec<Item>) -> PortResult<()> {
        for chunk in items.chunks(BATCH_WRITE_ITEMS) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder().set_item(Some(item.clone())).build();
                    put.map(|p| WriteRequest::builder().put_request(p).build())
                        .map_err(|e| PortError::Refused(e.to_string()))
                })
                .collect::<PortResult<_>>()?;
            for attempt in 0..8u32 {
                if requests.is_empty() {
                    break;
                }
                if attempt > 0 {
                    std::thread::sleep(std::time::Duration::from_millis(25 << attempt));
                }
                let call = self.client.batch_write_item().request_items(&self.table, requests.clone());
                let out = self.run(call.send()).map_err(|e| port_error("writing items", e))?;
                requests = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
            }
            if !requests.is_empty() {
                return Err(PortError::Unavailable(format!("{} items stayed unwritten (throttled)", requests.len())));
            }
        }
        Ok(())
    }

    /// One BatchGetItem of at most 100 keys, its unprocessed keys asked again with backoff.
    fn get_chunk(&self, chunk: &[(String, String)]) -> PortResult<Vec<Item>> {
        let mut out_items = Vec::with_capacity(chunk.len());
        let mut wanted: Vec<Item> =
            chunk.iter().map(|(pk, sk)| Item::from([("pk".into(), s(pk)), ("sk".into(), s(sk))])).collect();
        for attempt in 0..8u32 {
            if wanted.is_empty() {
                break;
            }
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_millis(25 << attempt));
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(wanted.clone()))
                .consistent_read(true)
                .build()
                .map_err(|e| PortError::Refused(e.to_string()))?;
            let call = self.client.batch_get_item().request_items(&self.table, request);
            let out = self.run(call.send()).map_err(|e| port_error("reading items", e))?;
            out_items.extend(out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default());
            wanted = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
        }
        if !wanted.is_empty() {
            return Err(PortError::Unavailable(format!("{} items stayed unread (throttled)", wanted.len())));
        }
        Ok(out_items)
    }

    /// The items at `keys` (pk, sk), read consistently, 100 a request, in the order of
    /// `keys`; one not there is an error (a pointer to nothing).
    pub(crate) fn get_all(&self, keys: &[(String, String)]) -> PortResult<Vec<Item>> {
        let mut found: HashMap<(String, String), Item> = HashMap::with_capacity(keys.len());
        // The chunks of a page at once: one round trip a page, not one a hundred items.
        let read: Vec<PortResult<Vec<Item>>> = if keys.len() <= BATCH_GET_ITEMS {
            vec![self.get_chunk(keys)]
        } else {
            std::thread::scope(|scope| {
                let calls: Vec<_> =
                    keys.chunks(BATCH_GET_ITEMS).map(|chunk| scope.spawn(move || self.get_chunk(chunk))).collect();
                calls
                    .into_iter()
                    .map(|c| {
                        c.join().unwrap_or_else(|_| Err(PortError::Unavailable("a read of items panicked".into())))
                    })
                    .collect()
            })
        };
        for items in read {
            for item in items? {
                let key = (text(&item, "pk").unwrap_or_default(), text(&item, "sk").unwrap_or_default());
                found.insert(key, item);
            }
        }
        keys.iter()
            .map(|k| {
                found
                    .remove(k)
                    .ok_or_else(|| PortError::Corrupt(format!("{} {} is pointed at but not there", k.0, k.1)))
            })
            .collect()
    }

    /// The files the pointers of a query name, in the pointers' order.
    fn files_pointed_at(&self, transfer_id: Uuid, pointers: &[Item]) -> PortResult<Vec<File>> {
        let pk = transfer_pk(transfer_id);
        let keys: Vec<(String, String)> = pointers
            .iter()
            .map(|p| {
                text(p, "file")
                    .map(|uuid| (pk.clone(), format!("F#{uuid}")))
                    .ok_or_else(|| PortError::Corrupt(format!("a file pointer of {pk} names no file")))
            })
            .collect::<PortResult<_>>()?;
        self.get_all(&keys)?.iter().map(|i| entity(i, "file")).collect()
    }

    /// Deletes an item (there or not).
    pub(crate) fn delete(&self, pk: &str, sk: &str) -> PortResult<()> {
        let call = self.client.delete_item().table_name(&self.table).key("pk", s(pk)).key("sk", s(sk));
        self.run(call.send()).map_err(|e| port_error(&format!("deleting {pk} {sk}"), e))?;
        Ok(())
    }

    /// An update with a condition; false when the condition failed.
    pub(crate) fn update(
        &self,
        pk: &str,
        sk: &str,
        expression: &str,
        condition: Option<&str>,
        values: Vec<(&str, AttributeValue)>,
        names: Vec<(&str, &str)>,
    ) -> PortResult<Option<Item>> {
        let mut call = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression(expression)
            .return_values(ReturnValue::AllNew);
        if let Some(c) = condition {
            call = call.condition_expression(c);
        }
        for (k, v) in values {
            call = call.expression_attribute_values(k, v);
        }
        for (k, v) in names {
            call = call.expression_attribute_names(k, v);
        }
        match self.run(call.send()) {
            Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
            Err(e) => match port_error(&format!("updating {pk} {sk}"), e) {
                e if failed_condition(&e) => Ok(None),
                e => Err(e),
            },
        }
    }

    /// Every item of a query, page after page (or one page of at most `limit`).
    pub(crate) fn query(
        &self,
        index: Option<&str>,
        key_condition: &str,
        values: Vec<(&str, AttributeValue)>,
        limit: Option<usize>,
    ) -> PortResult<(Vec<Item>, bool)> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut call = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(key_condition)
                // A global index is read eventually; the table and its local indexes consistently.
                .consistent_read(index != Some(BY_TIME))
                .set_exclusive_start_key(start.take());
            if let Some(i) = index {
                call = call.index_name(i);
            }
            if let Some(l) = limit {
                call = call.limit((l - items.len().min(l)).max(1) as i32);
            }
            for (k, v) in &values {
                call = call.expression_attribute_values(*k, v.clone());
            }
            let out = self.run(call.send()).map_err(|e| port_error("querying the table", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if limit.is_none_or(|l| items.len() < l) => start = Some(k),
                Some(_) => return Ok((items, true)),
                None => return Ok((items, false)),
            }
        }
    }

    fn transfer_item(&self, id: Uuid) -> PortResult<Option<Item>> {
        self.get(&transfer_pk(id), "META")
    }

    /// The transfer a pointer item (a SIP's, an AIP's) names.
    fn transfer_by_pointer(&self, pk: &str, sk: &str) -> PortResult<Option<Transfer>> {
        let Some(pointer) = self.get(pk, sk)? else {
            return Ok(None);
        };
        let id = text(&pointer, "transfer_id")
            .and_then(|t| Uuid::parse_str(&t).ok())
            .ok_or_else(|| PortError::Corrupt(format!("{pk} names no transfer")))?;
        self.transfer(id)
    }

    /// Reserves `count` event sequence numbers of the transfer; returns the first.
    fn reserve_seq(&self, transfer_id: Uuid, count: usize) -> PortResult<u64> {
        let out = self
            .update(
                &transfer_pk(transfer_id),
                "META",
                "ADD event_seq :n",
                Some("attribute_exists(pk)"),
                vec![(":n", n(count))],
                vec![],
            )?
            .ok_or_else(|| PortError::NotFound(format!("transfer {transfer_id}")))?;
        Ok(num(&out, "event_seq")? + 1 - count as u64)
    }

    fn put_events(&self, events: &[PremisEvent]) -> PortResult<()> {
        let mut by_transfer: HashMap<Uuid, Vec<&PremisEvent>> = HashMap::new();
        for e in events {
            by_transfer.entry(e.transfer_id).or_default().push(e);
        }
        for (transfer_id, events) in by_transfer {
            let first = self.reserve_seq(transfer_id, events.len())?;
            let pk = transfer_pk(transfer_id);
            let records: Vec<Item> = events
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let mut item = fields(*e);
                    item.insert("pk".into(), s(&pk));
                    item.insert("sk".into(), s(format!("EV#{}", e.uuid)));
                    item.insert("seq".into(), n(first + i as u64));
                    item
                })
                .collect();
            let new = self.put_all_new(&records)?;
            let mut copies = Vec::with_capacity(events.len() * 2);
            for ((e, record), new) in events.iter().zip(records).zip(new) {
                // An event is never rewritten: a duplicate leaves the first in place, and
                // its copies are written again from it (a delivery may have stopped between).
                let record = if new {
                    record
                } else {
                    self.get(&pk, &format!("EV#{}", e.uuid))?
                        .ok_or_else(|| PortError::Corrupt(format!("the event {} vanished", e.uuid)))?
                };
                copies.extend(event_copies(&record)?);
            }
            self.put_all(copies)?;
        }
        Ok(())
    }

    fn events_of(&self, transfer_id: Uuid, subject: &str) -> PortResult<Vec<PremisEvent>> {
        let (items, _) = self.query(
            None,
            "pk = :pk AND begins_with(sk, :s)",
            vec![(":pk", s(transfer_pk(transfer_id))), (":s", s(format!("S#{subject}#")))],
            None,
        )?;
        items.iter().map(|i| entity(i, "event")).collect()
    }

    /// Moves extraction's checkpoint from `from` (not done) to `to`, if it is still there:
    /// the commit point of a batch or a plan. False when another delivery moved it.
    fn move_checkpoint(&self, transfer_id: Uuid, from: &ExtractCheckpoint, to: &ExtractCheckpoint) -> PortResult<bool> {
        let moved = self.update(
            &transfer_pk(transfer_id),
            "META",
            "SET extract_next_entry = :ne, batch_count = :nb, file_count = :nf, extract_done = :done, updated_at = :now",
            Some("extract_next_entry = :fe AND batch_count = :fb AND file_count = :ff AND extract_done = :no"),
            vec![
                (":ne", n(to.next_entry)),
                (":nb", n(to.batches)),
                (":nf", n(to.files)),
                (":done", AttributeValue::Bool(to.done)),
                (":now", s(stamp(&self.clock.now()))),
                (":fe", n(from.next_entry)),
                (":fb", n(from.batches)),
                (":ff", n(from.files)),
                (":no", AttributeValue::Bool(false)),
            ],
            vec![],
        )?;
        Ok(moved.is_some())
    }

    fn checkpoint_of(item: &Item) -> PortResult<ExtractCheckpoint> {
        Ok(ExtractCheckpoint {
            next_entry: num(item, "extract_next_entry")?,
            batches: num(item, "batch_count")? as u32,
            files: num(item, "file_count")?,
            done: matches!(item.get("extract_done"), Some(AttributeValue::Bool(true))),
        })
    }
}

fn page<T>(mut items: Vec<T>, limit: usize, more: bool, cursor: impl Fn(&T) -> String) -> Page<T> {
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(&cursor)
    } else if more {
        items.last().map(&cursor)
    } else {
        None
    };
    Page { items, next }
}

fn job_order(stage: &str) -> usize {
    Stage::ALL.iter().position(|q| q.name() == stage).unwrap_or(usize::MAX)
}

impl TransferRegister for DynamoState {
    fn create_transfer(&self, idempotency_key: &str, t: &Transfer) -> PortResult<(Transfer, bool)> {
        let mut item = fields(t);
        item.insert("pk".into(), s(transfer_pk(t.id)));
        item.insert("sk".into(), s("META"));
        item.insert("gsi1pk".into(), s(LISTED));
        item.insert("gsi1sk".into(), s(format!("{}#{}", stamp(&t.created_at), t.id)));
        item.insert("extract_next_entry".into(), n(0));
        item.insert("extract_done".into(), AttributeValue::Bool(false));
        item.insert("search_text".into(), s(t.search_text()));
        let sip: Item = [
            ("pk".to_string(), s(format!("S#{}", t.sip_uuid))),
            ("sk".to_string(), s("S")),
            ("transfer_id".to_string(), s(t.id.to_string())),
        ]
        .into();
        let aip: Item = [
            ("pk".to_string(), s(format!("A#{}", t.aip_uuid))),
            ("sk".to_string(), s("A")),
            ("transfer_id".to_string(), s(t.id.to_string())),
        ]
        .into();
        let marker: Item = [
            ("pk".to_string(), s(format!("E#{idempotency_key}"))),
            ("sk".to_string(), s("E")),
            ("transfer_id".to_string(), s(t.id.to_string())),
            // S3 redelivers an event within minutes, not months: the marker may go (TTL).
            ("expires_at".to_string(), n(self.clock.now().timestamp() + MARKER_DAYS * 86_400)),
        ]
        .into();
        // The event's marker and the transfer, in one transaction: a duplicate delivery
        // finds the marker and the transfer it names, never one without the other.
        let put = |item: Item| {
            aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| PortError::Refused(e.to_string()))
        };
        let call = self
            .client
            .transact_write_items()
            .transact_items(aws_sdk_dynamodb::types::TransactWriteItem::builder().put(put(marker)?).build())
            .transact_items(aws_sdk_dynamodb::types::TransactWriteItem::builder().put(put(item)?).build())
            .transact_items(aws_sdk_dynamodb::types::TransactWriteItem::builder().put(put(sip)?).build())
            .transact_items(aws_sdk_dynamodb::types::TransactWriteItem::builder().put(put(aip)?).build());
        match self.run(call.send()) {
            Ok(_) => return Ok((t.clone(), true)),
            Err(e) => match port_error("creating a transfer", e) {
                PortError::Conflict(_) => {}
                e => return Err(e),
            },
        }
        let marker = self.get(&format!("E#{idempotency_key}"), "E")?.ok_or_else(|| {
            PortError::Unavailable(format!("the marker of event {idempotency_key} is not readable yet"))
        })?;
        let prior = text(&marker, "transfer_id")
            .and_then(|t| Uuid::parse_str(&t).ok())
            .ok_or_else(|| PortError::Corrupt(format!("the marker of event {idempotency_key} names no transfer")))?;
        let prior = self.transfer(prior)?.ok_or_else(|| {
            PortError::Corrupt(format!("event {idempotency_key} names transfer {prior}, which is not stored"))
        })?;
        Ok((prior, false))
    }

    fn transfer(&self, id: Uuid) -> PortResult<Option<Transfer>> {
        self.transfer_item(id)?.map(|i| entity(&i, "transfer")).transpose()
    }

    fn set_identifiers(&self, id: Uuid, identifiers: &CatalogueIdentifiers) -> PortResult<()> {
        let value = to_attr(&serde_json::to_value(identifiers).expect("identifiers serialize"))
            .unwrap_or(AttributeValue::Null(true));
        let mut transfer = self.transfer(id)?.ok_or_else(|| PortError::NotFound(format!("transfer {id}")))?;
        transfer.identifiers = identifiers.clone();
        self.update(
            &transfer_pk(id),
            "META",
            "SET identifiers = :i, search_text = :st, updated_at = :now",
            Some("attribute_exists(pk)"),
            vec![(":i", value), (":st", s(transfer.search_text())), (":now", s(stamp(&self.clock.now())))],
            vec![],
        )?;
        Ok(())
    }

    fn set_files_not_scanned(&self, id: Uuid, count: u64) -> PortResult<()> {
        self.update(
            &transfer_pk(id),
            "META",
            "SET files_not_scanned = :n",
            Some("attribute_exists(pk)"),
            vec![(":n", AttributeValue::N(count.to_string()))],
            vec![],
        )?;
        Ok(())
    }

    fn set_files_not_normalized(&self, id: Uuid, count: u64) -> PortResult<()> {
        self.update(
            &transfer_pk(id),
            "META",
            "SET files_not_normalized = :n",
            Some("attribute_exists(pk)"),
            vec![(":n", AttributeValue::N(count.to_string()))],
            vec![],
        )?;
        Ok(())
    }

    fn set_validation_counts(&self, id: Uuid, counts: ValidationCounts) -> PortResult<()> {
        let value =
            to_attr(&serde_json::to_value(counts).expect("counts serialize")).unwrap_or(AttributeValue::Null(true));
        self.update(
            &transfer_pk(id),
            "META",
            "SET validation = :v",
            Some("attribute_exists(pk)"),
            vec![(":v", value)],
            vec![],
        )?;
        Ok(())
    }

    fn set_microservice(&self, id: Uuid, microservice: &str) -> PortResult<()> {
        self.update(
            &transfer_pk(id),
            "META",
            "SET current_microservice = :m, updated_at = :now",
            Some("#status = :processing"),
            vec![
                (":m", s(microservice)),
                (":now", s(stamp(&self.clock.now()))),
                (":processing", serde_name(&TransferStatus::Processing)),
            ],
            vec![("#status", "status")],
        )?;
        Ok(())
    }

    fn end_transfer(&self, id: Uuid, status: TransferStatus, reason: &str) -> PortResult<bool> {
        let now = s(stamp(&self.clock.now()));
        Ok(self
            .update(
                &transfer_pk(id),
                "META",
                "SET #status = :st, failure_reason = :r, updated_at = :now, completed_at = :now",
                Some("#status = :processing"),
                vec![
                    (":st", serde_name(&status)),
                    (":r", s(reason)),
                    (":now", now),
                    (":processing", serde_name(&TransferStatus::Processing)),
                ],
                vec![("#status", "status")],
            )?
            .is_some())
    }

    fn complete_transfer(&self, id: Uuid, aip: &StoredAip) -> PortResult<bool> {
        let now = s(stamp(&self.clock.now()));
        let mut set = "SET #status = :st, aip_key = :k, aip_version = :v, aip_space = :sp, updated_at = :now, completed_at = :now".to_string();
        let mut values = vec![
            (":st", serde_name(&TransferStatus::Complete)),
            (":k", s(&aip.key)),
            (":v", n(aip.version)),
            (":sp", s(&aip.space)),
            (":now", now),
            (":processing", serde_name(&TransferStatus::Processing)),
        ];
        if let Some(dip) = &aip.dip {
            set.push_str(", dip_key = :dip");
            values.push((":dip", s(dip)));
        }
        Ok(self
            .update(&transfer_pk(id), "META", &set, Some("#status = :processing"), values, vec![("#status", "status")])?
            .is_some())
    }

    fn assign_aip_version(&self, transfer_id: Uuid, space: &str, identifier: &str) -> PortResult<u32> {
        let registry = format!("V#{space}#{identifier}");
        for _ in 0..100 {
            let transfer = self
                .transfer_item(transfer_id)?
                .ok_or_else(|| PortError::NotFound(format!("transfer {transfer_id}")))?;
            if transfer.contains_key("aip_version") {
                return Ok(num(&transfer, "aip_version")? as u32);
            }
            let last = self.get(&registry, "V")?.map(|i| num(&i, "last")).transpose()?.unwrap_or(0);
            let version = last + 1;
            // The registry moves from `last` to `version` and the transfer takes it, together.
            let registry_update = aws_sdk_dynamodb::types::Update::builder()
                .table_name(&self.table)
                .key("pk", s(&registry))
                .key("sk", s("V"))
                .update_expression("SET #last = :v")
                .condition_expression(if last == 0 { "attribute_not_exists(#last)" } else { "#last = :old" })
                .expression_attribute_names("#last", "last")
                .expression_attribute_values(":v", n(version))
                .set_expression_attribute_values(Some(if last == 0 {
                    [(":v".to_string(), n(version))].into()
                } else {
                    [(":v".to_string(), n(version)), (":old".to_string(), n(last))].into()
                }))
                .build()
                .map_err(|e| PortError::Refused(e.to_string()))?;
            let transfer_update = aws_sdk_dynamodb::types::Update::builder()
                .table_name(&self.table)
                .key("pk", s(transfer_pk(transfer_id)))
                .key("sk", s("META"))
                .update_expression("SET aip_version = :v, aip_space = :sp, aip_identifier = :id")
                .condition_expression("attribute_not_exists(aip_version)")
                .set_expression_attribute_values(Some(
                    [(":v".to_string(), n(version)), (":sp".to_string(), s(space)), (":id".to_string(), s(identifier))]
                        .into(),
                ))
                .build()
                .map_err(|e| PortError::Refused(e.to_string()))?;
            let call = self
                .client
                .transact_write_items()
                .transact_items(aws_sdk_dynamodb::types::TransactWriteItem::builder().update(registry_update).build())
                .transact_items(aws_sdk_dynamodb::types::TransactWriteItem::builder().update(transfer_update).build());
            match self.run(call.send()) {
                Ok(_) => return Ok(version as u32),
                Err(e) => match port_error("assigning an AIP version", e) {
                    // Another transfer took that version, or another delivery this transfer's one.
                    PortError::Conflict(_) => continue,
                    e => return Err(e),
                },
            }
        }
        Err(PortError::Unavailable(format!("no AIP version for {identifier} after 100 tries")))
    }
}

impl TransferOversight for DynamoState {
    fn list_transfers(&self, query: &TransferQuery) -> PortResult<Page<Transfer>> {
        let limit = query.limit.max(1);
        let mut values = vec![(":p", s(if query.hidden { HIDDEN } else { LISTED }))];
        let mut condition = "gsi1pk = :p".to_string();
        if let Some(after) = &query.after {
            condition.push_str(" AND gsi1sk < :after");
            values.push((":after", s(after.clone())));
        }
        let mut filters = Vec::new();
        if let Some(st) = query.status {
            values.push((":status", serde_name(&st)));
            filters.push("#status = :status");
        }
        if let Some(q) = query.search.as_deref().map(str::to_lowercase).filter(|q| !q.is_empty()) {
            values.push((":q", s(q)));
            filters.push("contains(search_text, :q)");
        }
        let filter = (!filters.is_empty()).then(|| filters.join(" AND "));
        // The filter's name placeholder goes through a raw query: `status` is a reserved word.
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        let more = loop {
            let mut call = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_TIME)
                .key_condition_expression(&condition)
                .scan_index_forward(false)
                .limit((limit + 1) as i32)
                .set_exclusive_start_key(start.take());
            if let Some(f) = &filter {
                call = call.filter_expression(f);
                if query.status.is_some() {
                    call = call.expression_attribute_names("#status", "status");
                }
            }
            for (k, v) in &values {
                call = call.expression_attribute_values(*k, v.clone());
            }
            let out = self.run(call.send()).map_err(|e| port_error("listing transfers", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if items.len() <= limit => start = Some(k),
                Some(_) => break true,
                None => break false,
            }
        };
        let transfers: Vec<(String, Transfer)> = items
            .iter()
            .map(|i| Ok((text(i, "gsi1sk").unwrap_or_default(), entity(i, "transfer")?)))
            .collect::<PortResult<_>>()?;
        let paged = page(transfers, limit, more, |(cursor, _)| cursor.clone());
        Ok(Page { items: paged.items.into_iter().map(|(_, t)| t).collect(), next: paged.next })
    }

    fn transfer_by_sip(&self, sip_uuid: Uuid) -> PortResult<Option<Transfer>> {
        self.transfer_by_pointer(&format!("S#{sip_uuid}"), "S")
    }

    fn transfer_by_aip(&self, aip_uuid: Uuid) -> PortResult<Option<Transfer>> {
        self.transfer_by_pointer(&format!("A#{aip_uuid}"), "A")
    }

    fn flag_stuck(&self, id: Uuid, since: vellum_core::model::Timestamp) -> PortResult<bool> {
        Ok(self
            .update(
                &transfer_pk(id),
                "META",
                "SET stuck_since = :since",
                Some("#status = :processing AND (attribute_not_exists(stuck_since) OR stuck_since <> :since)"),
                vec![(":since", s(stamp(&since))), (":processing", serde_name(&TransferStatus::Processing))],
                vec![("#status", "status")],
            )?
            .is_some())
    }

    fn set_fixity_checked(&self, id: Uuid, at: vellum_core::model::Timestamp) -> PortResult<()> {
        self.update(
            &transfer_pk(id),
            "META",
            "SET fixity_checked_at = :at",
            Some("attribute_exists(pk)"),
            vec![(":at", s(stamp(&at)))],
            vec![],
        )?;
        Ok(())
    }

    fn hide_transfer(&self, id: Uuid) -> PortResult<bool> {
        Ok(self
            .update(
                &transfer_pk(id),
                "META",
                "SET #hidden = :yes, gsi1pk = :hidden",
                Some("attribute_exists(pk) AND #status <> :processing AND (attribute_not_exists(#hidden) OR #hidden = :no)"),
                vec![
                    (":yes", AttributeValue::Bool(true)),
                    (":no", AttributeValue::Bool(false)),
                    (":hidden", s(HIDDEN)),
                    (":processing", serde_name(&TransferStatus::Processing)),
                ],
                vec![("#status", "status"), ("#hidden", "hidden")],
            )?
            .is_some())
    }

    fn reopen_transfer(&self, id: Uuid, stage: &str) -> PortResult<bool> {
        use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
        let update = |sk: &str, expression: &str, condition: &str, values: Vec<(&str, AttributeValue)>| {
            let mut u = Update::builder()
                .table_name(&self.table)
                .key("pk", s(transfer_pk(id)))
                .key("sk", s(sk))
                .update_expression(expression)
                .condition_expression(condition)
                .expression_attribute_names("#status", "status");
            if expression.contains("#hidden") {
                u = u.expression_attribute_names("#hidden", "hidden");
            }
            for (k, v) in values {
                u = u.expression_attribute_values(k, v);
            }
            u.build().map_err(|e| PortError::Refused(e.to_string()))
        };
        let processing = serde_name(&TransferStatus::Processing);
        let transfer = update(
            "META",
            "SET #status = :st, updated_at = :now, #hidden = :no, gsi1pk = :listed REMOVE failure_reason, completed_at",
            "#status = :failed",
            vec![
                (":st", processing),
                (":now", s(stamp(&self.clock.now()))),
                (":no", AttributeValue::Bool(false)),
                (":listed", s(LISTED)),
                (":failed", serde_name(&TransferStatus::Failed)),
            ],
        )?;
        let job = update(
            &format!("JOB#{stage}"),
            "SET #status = :st REMOVE ended_at",
            "attribute_exists(pk)",
            vec![(":st", serde_name(&JobStatus::Processing))],
        )?;
        let call = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(transfer).build())
            .transact_items(TransactWriteItem::builder().update(job).build());
        match self.run(call.send()) {
            Ok(_) => Ok(true),
            Err(e) => match port_error("reopening a transfer", e) {
                PortError::Conflict(_) => Ok(false),
                e => Err(e),
            },
        }
    }
}

impl JobLedger for DynamoState {
    fn start_job(&self, transfer_id: Uuid, spec: &JobSpec<'_>) -> PortResult<Job> {
        let job = Job {
            uuid: vellum_core::model::derived_id(transfer_id, &format!("job/{}", spec.stage)),
            transfer_id,
            stage: spec.stage.to_string(),
            microservice_group: spec.microservice_group.to_string(),
            name: spec.name.to_string(),
            status: JobStatus::Processing,
            started_at: self.clock.now(),
            ended_at: None,
            batches_done: 0,
            last_error: None,
            progressed_at: None,
        };
        let mut item = fields(&job);
        item.insert("pk".into(), s(transfer_pk(transfer_id)));
        item.insert("sk".into(), s(format!("JOB#{}", spec.stage)));
        if self.put_new(item)? {
            return Ok(job);
        }
        self.job(transfer_id, spec.stage)?
            .ok_or_else(|| PortError::Unavailable(format!("the {} job of {transfer_id} vanished", spec.stage)))
    }

    fn finish_job(&self, transfer_id: Uuid, stage: &str, status: JobStatus) -> PortResult<()> {
        self.update(
            &transfer_pk(transfer_id),
            &format!("JOB#{stage}"),
            "SET #status = :st, ended_at = if_not_exists(ended_at, :now)",
            Some("#status = :processing"),
            vec![
                (":st", serde_name(&status)),
                (":now", s(stamp(&self.clock.now()))),
                (":processing", serde_name(&JobStatus::Processing)),
            ],
            vec![("#status", "status")],
        )?;
        Ok(())
    }

    fn note_job_error(&self, transfer_id: Uuid, stage: &str, error: &str) -> PortResult<()> {
        // Kept short: a reason, not a log.
        let error: String = error.chars().take(2000).collect();
        self.update(
            &transfer_pk(transfer_id),
            &format!("JOB#{stage}"),
            "SET last_error = :e",
            Some("attribute_exists(pk)"),
            vec![(":e", s(error))],
            vec![],
        )?;
        Ok(())
    }

    fn job(&self, transfer_id: Uuid, stage: &str) -> PortResult<Option<Job>> {
        self.get(&transfer_pk(transfer_id), &format!("JOB#{stage}"))?.map(|i| job_from(&i)).transpose()
    }

    fn jobs(&self, transfer_id: Uuid) -> PortResult<Vec<Job>> {
        let (items, _) = self.query(
            None,
            "pk = :pk AND begins_with(sk, :job)",
            vec![(":pk", s(transfer_pk(transfer_id))), (":job", s("JOB#"))],
            None,
        )?;
        let mut jobs: Vec<Job> = items.iter().map(job_from).collect::<PortResult<_>>()?;
        jobs.sort_by_key(|a| (a.started_at, job_order(&a.stage)));
        Ok(jobs)
    }

    fn tasks(&self, job_uuid: Uuid) -> PortResult<Vec<Task>> {
        let (items, _) = self.query(None, "pk = :pk", vec![(":pk", s(format!("J#{job_uuid}")))], None)?;
        let mut tasks: Vec<Task> = items.iter().map(|i| entity(i, "task")).collect::<PortResult<_>>()?;
        tasks.sort_by_key(|a| (a.started_at, a.uuid));
        Ok(tasks)
    }

    fn task(&self, uuid: Uuid) -> PortResult<Option<Task>> {
        let (items, _) = self.query(Some(BY_TIME), "gsi1pk = :p", vec![(":p", s(format!("TASK#{uuid}")))], Some(1))?;
        items.first().map(|i| entity(i, "task")).transpose()
    }

    fn job_checkpoint(&self, transfer_id: Uuid, stage: &str) -> PortResult<Option<String>> {
        Ok(self.get(&transfer_pk(transfer_id), &format!("JOB#{stage}"))?.and_then(|i| text(&i, "checkpoint")))
    }

    fn set_job_checkpoint(&self, transfer_id: Uuid, stage: &str, expected: Option<&str>, next: &str) -> PortResult<()> {
        let (condition, mut values) = match expected {
            None => ("attribute_exists(pk) AND attribute_not_exists(checkpoint)", vec![]),
            Some(e) => ("checkpoint = :expected", vec![(":expected", s(e))]),
        };
        values.push((":next", s(next)));
        values.push((":now", s(stamp(&self.clock.now()))));
        match self.update(
            &transfer_pk(transfer_id),
            &format!("JOB#{stage}"),
            "SET checkpoint = :next, progressed_at = :now",
            Some(condition),
            values,
            vec![],
        )? {
            Some(_) => Ok(()),
            None => Err(PortError::Conflict(format!("the {stage} checkpoint of {transfer_id} moved"))),
        }
    }
}

impl FileCatalogue for DynamoState {
    fn extract_checkpoint(&self, transfer_id: Uuid) -> PortResult<ExtractCheckpoint> {
        let item =
            self.transfer_item(transfer_id)?.ok_or_else(|| PortError::NotFound(format!("transfer {transfer_id}")))?;
        Self::checkpoint_of(&item)
    }

    fn commit_extract_batch(
        &self,
        transfer_id: Uuid,
        from: &ExtractCheckpoint,
        files: &[File],
        events: &[PremisEvent],
        next_entry: u64,
    ) -> PortResult<ExtractCheckpoint> {
        let current = self.extract_checkpoint(transfer_id)?;
        if current != *from || current.done {
            return Err(PortError::Conflict(format!("extraction checkpoint moved from {from:?} to {current:?}")));
        }
        self.write_extracted_batch(transfer_id, from.batches, files, events)?;
        let next = ExtractCheckpoint {
            next_entry,
            batches: from.batches + u32::from(!files.is_empty()),
            files: from.files + files.len() as u64,
            done: false,
        };
        if self.move_checkpoint(transfer_id, from, &next)? {
            Ok(next)
        } else {
            Err(PortError::Conflict(format!("extraction checkpoint moved from {from:?} while this batch was written")))
        }
    }

    fn finish_extract(&self, transfer_id: Uuid) -> PortResult<ExtractCheckpoint> {
        let item = self
            .update(
                &transfer_pk(transfer_id),
                "META",
                "SET extract_done = :yes",
                Some("attribute_exists(pk)"),
                vec![(":yes", AttributeValue::Bool(true))],
                vec![],
            )?
            .ok_or_else(|| PortError::NotFound(format!("transfer {transfer_id}")))?;
        Self::checkpoint_of(&item)
    }

    fn plan_extract(
        &self,
        transfer_id: Uuid,
        from: &ExtractCheckpoint,
        planned: &ExtractCheckpoint,
    ) -> PortResult<ExtractCheckpoint> {
        let planned = ExtractCheckpoint { done: true, ..*planned };
        if self.move_checkpoint(transfer_id, from, &planned)? {
            Ok(planned)
        } else {
            Err(PortError::Conflict(format!("extraction checkpoint moved from {from:?} before the plan was fixed")))
        }
    }

    fn write_extracted_batch(
        &self,
        transfer_id: Uuid,
        batch: u32,
        files: &[File],
        events: &[PremisEvent],
    ) -> PortResult<()> {
        let pk = transfer_pk(transfer_id);
        let records: Vec<Item> = files
            .iter()
            .map(|f| {
                let mut item = fields(f);
                item.insert("batch".into(), n(batch));
                item.insert("pk".into(), s(&pk));
                item.insert("sk".into(), s(format!("F#{}", f.uuid)));
                item
            })
            .collect();
        // Never over a record a later stage may have patched.
        self.put_all_new(&records)?;
        let mut pointers = Vec::with_capacity(files.len() * 2);
        for f in files {
            let pointer = |sk: String| {
                Item::from([("pk".into(), s(&pk)), ("sk".into(), s(sk)), ("file".into(), s(f.uuid.to_string()))])
            };
            pointers.push(pointer(format!("B#{:010}#{:020}", batch, f.entry_index)));
            pointers.push(pointer(format!("P#{}", path_key(f))));
        }
        self.put_all(pointers)?;
        self.put_events(events)
    }

    fn write_batch_items(
        &self,
        transfer_id: Uuid,
        tasks: &[Task],
        events: &[PremisEvent],
        patches: &[FilePatch],
    ) -> PortResult<()> {
        let tasks: Vec<Item> = tasks
            .iter()
            .map(|t| {
                let mut item = fields(t);
                item.insert("pk".into(), s(format!("J#{}", t.job_uuid)));
                item.insert("sk".into(), s(format!("TASK#{}", t.uuid)));
                // Found by its id alone (Archivematica's v2beta/task) through the global index.
                item.insert("gsi1pk".into(), s(format!("TASK#{}", t.uuid)));
                item.insert("gsi1sk".into(), s("T"));
                item
            })
            .collect();
        self.put_all_new(&tasks)?;
        self.put_events(events)?;
        self.apply_patches(transfer_id, patches)
    }

    fn mark_batch_done(&self, transfer_id: Uuid, stage: &str, batch: u32) -> PortResult<BatchRecorded> {
        let added = self.update(
            &transfer_pk(transfer_id),
            &format!("JOB#{stage}"),
            "ADD done_batches :b, batches_done :one SET progressed_at = :now",
            Some("NOT contains(done_batches, :bn)"),
            vec![
                (":b", AttributeValue::Ns(vec![batch.to_string()])),
                (":one", n(1)),
                (":bn", n(batch)),
                (":now", s(stamp(&self.clock.now()))),
            ],
            vec![],
        )?;
        let newly_recorded = added.is_some();
        let job = match added {
            Some(item) => item,
            None => self.get(&transfer_pk(transfer_id), &format!("JOB#{stage}"))?.unwrap_or_default(),
        };
        let done = match job.get("done_batches") {
            Some(AttributeValue::Ns(set)) => set.len() as u64,
            _ => 0,
        };
        let checkpoint = self.extract_checkpoint(transfer_id)?;
        Ok(BatchRecorded { newly_recorded, stage_complete: checkpoint.done && done >= checkpoint.batches as u64 })
    }

    fn files(&self, transfer_id: Uuid, after: Option<&str>, limit: usize) -> PortResult<Page<File>> {
        let limit = limit.max(1);
        // The pointers after the cursor (a pointer's key past "P#"); what sorts after them
        // (other kinds of item) ends the list.
        let (items, more) = self.query(
            None,
            "pk = :pk AND sk > :after",
            vec![(":pk", s(transfer_pk(transfer_id))), (":after", s(format!("P#{}", after.unwrap_or_default())))],
            Some(limit + 1),
        )?;
        let all = items.len();
        let pointers: Vec<Item> =
            items.into_iter().take_while(|i| text(i, "sk").is_some_and(|sk| sk.starts_with("P#"))).collect();
        let more = more && pointers.len() == all;
        let files = self.files_pointed_at(transfer_id, &pointers)?;
        Ok(page(files, limit, more, path_key))
    }

    fn batch_files(&self, transfer_id: Uuid, batch: u32, after: Option<&str>, limit: usize) -> PortResult<Page<File>> {
        let limit = limit.max(1);
        let from = match after {
            None => format!("B#{batch:010}#"),
            Some(a) => {
                let entry: u64 =
                    a.parse().map_err(|_| PortError::Refused(format!("{a:?} is not a cursor of a batch")))?;
                format!("B#{batch:010}#{:020}", entry + 1)
            }
        };
        let (items, more) = self.query(
            None,
            "pk = :pk AND sk BETWEEN :from AND :to",
            vec![(":pk", s(transfer_pk(transfer_id))), (":from", s(from)), (":to", s(format!("B#{batch:010}#~")))],
            Some(limit + 1),
        )?;
        let files = self.files_pointed_at(transfer_id, &items)?;
        Ok(page(files, limit, more, |f| f.entry_index.to_string()))
    }
}

impl EventLog for DynamoState {
    fn record_events(&self, events: &[PremisEvent]) -> PortResult<()> {
        self.put_events(events)
    }

    fn events(&self, transfer_id: Uuid, after: Option<&str>, limit: usize) -> PortResult<Page<PremisEvent>> {
        let limit = limit.max(1);
        let from: u64 = match after {
            None => 0,
            Some(a) => {
                a.parse::<u64>().map_err(|_| PortError::Refused(format!("{a:?} is not a cursor of events")))? + 1
            }
        };
        let (items, more) = self.query(
            None,
            "pk = :pk AND sk BETWEEN :from AND :to",
            vec![(":pk", s(transfer_pk(transfer_id))), (":from", s(format!("E#{from:012}"))), (":to", s("E#~"))],
            Some(limit + 1),
        )?;
        let events: Vec<(u64, PremisEvent)> =
            items.iter().map(|i| Ok((num(i, "seq")?, entity(i, "event")?))).collect::<PortResult<_>>()?;
        let paged = page(events, limit, more, |(seq, _)| seq.to_string());
        Ok(Page { items: paged.items.into_iter().map(|(_, e)| e).collect(), next: paged.next })
    }

    fn file_events(&self, transfer_id: Uuid, file_uuid: Uuid) -> PortResult<Vec<PremisEvent>> {
        self.events_of(transfer_id, &file_uuid.to_string())
    }

    fn transfer_events(&self, transfer_id: Uuid) -> PortResult<Vec<PremisEvent>> {
        self.events_of(transfer_id, "T")
    }
}

impl DynamoState {
    /// A patch sets what it carries, key by key inside the maps, so applying it twice
    /// changes nothing.
    fn apply_patches(&self, transfer_id: Uuid, patches: &[FilePatch]) -> PortResult<()> {
        let updates: Vec<PatchUpdate> = patches.iter().filter_map(patch_update).collect();
        let pk = transfer_pk(transfer_id);
        let size =
            |u: &PatchUpdate| u.values.iter().map(|(k, v)| k.len() + value_size(v)).sum::<usize>() + u.expression.len();
        for chunk in transaction_chunks(&updates, size) {
            if chunk.len() > 1 {
                let mut call = self.client.transact_write_items();
                for u in chunk {
                    let update = aws_sdk_dynamodb::types::Update::builder()
                        .table_name(&self.table)
                        .key("pk", s(&pk))
                        .key("sk", s(&u.sk))
                        .update_expression(&u.expression)
                        .condition_expression("attribute_exists(pk)")
                        .set_expression_attribute_values(Some(u.values.iter().cloned().collect()))
                        .set_expression_attribute_names(Some(u.names.iter().cloned().collect()))
                        .build()
                        .map_err(|e| PortError::Refused(e.to_string()))?;
                    call = call.transact_items(TransactWriteItem::builder().update(update).build());
                }
                match self.run(call.send()) {
                    Ok(_) => continue,
                    Err(e) => match port_error("patching files", e) {
                        // A file not there (or a race): item by item, as below.
                        e if failed_condition(&e) => {}
                        e => return Err(e),
                    },
                }
            }
            for u in chunk {
                self.update(
                    &pk,
                    &u.sk,
                    &u.expression,
                    Some("attribute_exists(pk)"),
                    u.values.iter().map(|(k, v)| (k.as_str(), v.clone())).collect(),
                    u.names.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
                )?;
            }
        }
        Ok(())
    }
}

/// A patch as the update that sets what it carries, key by key inside the maps, so applying
/// it twice changes nothing; None when it carries nothing.
fn patch_update(p: &FilePatch) -> Option<PatchUpdate> {
    let mut sets = Vec::new();
    let mut values: Vec<(String, AttributeValue)> = Vec::new();
    let mut names: Vec<(String, String)> = Vec::new();
    for (i, (k, v)) in p.checksums.iter().enumerate() {
        sets.push(format!("checksums.#c{i} = :c{i}"));
        names.push((format!("#c{i}"), k.clone()));
        values.push((format!(":c{i}"), s(v)));
    }
    for (i, (k, v)) in p.characteristics.iter().enumerate() {
        sets.push(format!("characteristics.#t{i} = :t{i}"));
        names.push((format!("#t{i}"), k.clone()));
        values.push((format!(":t{i}"), s(v)));
    }
    if let Some(f) = &p.format {
        sets.push("#format = :format".into());
        names.push(("#format".into(), "format".into()));
        values.push((
            ":format".into(),
            to_attr(&serde_json::to_value(f).expect("formats serialize")).unwrap_or(AttributeValue::Null(true)),
        ));
    }
    if let Some(size) = p.size {
        sets.push("#size = :size".into());
        names.push(("#size".into(), "size".into()));
        values.push((":size".into(), n(size)));
    }
    if sets.is_empty() {
        return None;
    }
    Some(PatchUpdate { sk: format!("F#{}", p.uuid), expression: format!("SET {}", sets.join(", ")), values, names })
}

/// The key of a file's pointer in path order, past "P#": its path, or a long path cut at
/// `PATH_KEY_BYTES` (on a character's edge) with its uuid after, so keys stay unique.
fn path_key(f: &File) -> String {
    let path = &f.current_path;
    if path.len() <= PATH_KEY_BYTES {
        return path.clone();
    }
    let mut cut = PATH_KEY_BYTES;
    while !path.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}#{}", &path[..cut], f.uuid)
}

/// An event record's copies in the transfer's order and in its subject's.
fn event_copies(record: &Item) -> PortResult<[Item; 2]> {
    let seq = num(record, "seq")?;
    let subject = text(record, "file_uuid").unwrap_or_else(|| "T".to_string());
    let copy = |sk: String| {
        let mut item = record.clone();
        item.insert("sk".into(), s(sk));
        item
    };
    Ok([copy(format!("E#{seq:012}")), copy(format!("S#{subject}#{seq:012}"))])
}

/// A value as serde names it, the way it is stored.
fn serde_name<T: Serialize>(v: &T) -> AttributeValue {
    to_attr(&serde_json::to_value(v).expect("values serialize")).unwrap_or(AttributeValue::Null(true))
}

fn job_from(item: &Item) -> PortResult<Job> {
    entity(item, "job")
}
