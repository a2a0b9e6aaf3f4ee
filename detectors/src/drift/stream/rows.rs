//! The snapshots the streaming detector keeps: one small owned row per
//! resource and side, holding only what the join reads, not a slice of the
//! batch it was decoded in (a slice keeps its whole batch alive).
//!
//! A million resources must fit in well under a gigabyte, so a row holds
//! - nothing the group already says: its record key and type id are
//!   rebuilt from the group's type id and the key's account and region;
//! - the texts that repeat across the estate (accounts, regions, types,
//!   files, item statuses) as 4-byte `Name`s;
//! - its own texts (address, ids, ARN, tags and the documents cut to what
//!   the mappings compare), each length-prefixed, the whole packed with its
//!   side's dictionary (`packing.rs`).

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray, BooleanBuilder, RecordBatch, StringBuilder};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use driftline_pipeline::schema::{DECLARED_SCHEMA, OBSERVED_SCHEMA};
use driftline_pipeline::split_key;

use super::names::{Name, Names};
use super::packing::{Packing, put_len, take_len};
use super::{Side, col};
use crate::drift::docs::{DECLARED_JOINED, OBSERVED_JOINED};
use crate::drift::projection::DriftProjection;
use crate::mappings::Mappings;

/// Where a column of the kept batches comes from.
enum Source {
    /// The group's type id.
    TypeId,
    Named(fn(&Row) -> Name),
    Flag(fn(&Row) -> bool),
    /// The row's own texts, at this place.
    Text(usize),
}

/// The row's own texts, in the order they are written.
const DECLARED_TEXTS: &[&str] = &["address", "id", "attributes"];
const OBSERVED_TEXTS: &[&str] = &[
    "resource_id",
    "resource_name",
    "arn",
    "tags",
    "configuration",
    "supplementary_configuration",
];

fn source(side: Side, column: &str) -> Source {
    let texts = match side {
        Side::Declared => DECLARED_TEXTS,
        Side::Observed => OBSERVED_TEXTS,
    };
    if let Some(i) = texts.iter().position(|t| *t == column) {
        return Source::Text(i);
    }
    match column {
        "type_id" => Source::TypeId,
        "account" => Source::Named(|r| r.account),
        "region" => Source::Named(|r| r.region),
        "source" => Source::Named(|r| r.source),
        "tf_type" => Source::Named(|r| r.tf_type),
        "resource_type" => Source::Named(|r| r.resource_type),
        "status" => Source::Named(|r| r.status),
        "deposed" => Source::Flag(|r| r.deposed),
        "summary_only" => Source::Flag(|r| r.summary_only),
        other => unreachable!("no kept column {other}"),
    }
}

/// The columns of the batches `Rows::batch` builds: what the join reads
/// and the documents `drift_diff` reads.
fn kept_schema(full: &Schema, joined: &[&str], documents: &[&str]) -> SchemaRef {
    let fields: Vec<_> = joined
        .iter()
        .chain(documents)
        .map(|c| full.field_with_name(c).expect("a snapshot column").clone())
        .collect();
    Arc::new(Schema::new(fields))
}

static DECLARED_KEPT: LazyLock<SchemaRef> =
    LazyLock::new(|| kept_schema(&DECLARED_SCHEMA, DECLARED_JOINED, &["attributes"]));
static OBSERVED_KEPT: LazyLock<SchemaRef> = LazyLock::new(|| {
    kept_schema(
        &OBSERVED_SCHEMA,
        OBSERVED_JOINED,
        &["configuration", "supplementary_configuration"],
    )
});

/// The account and region a record key names (`aws/{account}/{region}/…`):
/// with the group's type id, the whole key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct KeyScope {
    account: Name,
    region: Name,
}

/// One kept snapshot.
pub(super) struct Row {
    packed: Box<[u8]>,
    pub(super) account: Name,
    pub(super) region: Name,
    /// The AWS Config type (declared rows: the type in their `type_id`).
    pub(super) resource_type: Name,
    source: Name,
    /// Declared rows only.
    tf_type: Name,
    /// Observed rows only: the item's status.
    status: Name,
    deposed: bool,
    summary_only: bool,
    /// AWS Config says it does not record this resource.
    pub(super) not_recorded: bool,
}

/// Turns decoded rows into kept rows and kept rows back into batches.
pub(super) struct Rows {
    projection: DriftProjection,
    names: Names,
    declared: Packing,
    observed: Packing,
    /// Reused for every row written or read.
    text: Vec<u8>,
    unpacked: Vec<u8>,
}

fn text_at<'a>(batch: &'a RecordBatch, name: &str, index: usize) -> Option<&'a str> {
    col(batch, name)
        .filter(|c| c.is_valid(index))
        .map(|c| c.value(index))
}

fn flag_at(batch: &RecordBatch, name: &str, index: usize) -> bool {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_boolean_opt())
        .is_some_and(|c| c.is_valid(index) && c.value(index))
}

/// The id part of a type id (`{ResourceType}/{id}`).
fn id_of(type_id: &str) -> &str {
    type_id.split_once('/').map_or("", |(_, id)| id)
}

// A text is written as a length tag, then its bytes: the tag is 0 for
// none, 1 for the id part of the group's type id (most ids repeat it), or
// its length + 2.
const NONE: usize = 0;
const THE_ID: usize = 1;

fn put_text(out: &mut Vec<u8>, text: Option<&str>, id: &str) {
    match text {
        None => put_len(out, NONE),
        Some(t) if t == id && !id.is_empty() => put_len(out, THE_ID),
        Some(t) => {
            put_len(out, t.len() + 2);
            out.extend_from_slice(t.as_bytes());
        }
    }
}

/// Most texts a row holds (the observed side's).
const MAX_TEXTS: usize = 6;

fn take_texts<'a>(
    mut bytes: &'a [u8],
    id: &'a str,
) -> Result<[Option<&'a str>; MAX_TEXTS], ArrowError> {
    let bad = || ArrowError::InvalidArgumentError("a kept row's texts are cut short".into());
    let mut out = [None; MAX_TEXTS];
    let mut i = 0;
    while !bytes.is_empty() {
        let (tag, rest) = take_len(bytes).ok_or_else(bad)?;
        bytes = rest;
        *out.get_mut(i).ok_or_else(bad)? = match tag {
            NONE => None,
            THE_ID => Some(id),
            n => {
                let (t, rest) = bytes.split_at_checked(n - 2).ok_or_else(bad)?;
                bytes = rest;
                Some(std::str::from_utf8(t).map_err(|e| ArrowError::ExternalError(e.into()))?)
            }
        };
        i += 1;
    }
    Ok(out)
}

/// One kept snapshot, as `Rows::batch` reads it.
pub(super) struct Kept<'a> {
    pub(super) type_id: &'a str,
    pub(super) row: &'a Row,
}

impl Rows {
    pub(super) fn new(mappings: &Mappings) -> Self {
        Self {
            projection: DriftProjection::new(mappings),
            names: Names::default(),
            declared: Packing::default(),
            observed: Packing::default(),
            text: Vec::new(),
            unpacked: Vec::new(),
        }
    }

    pub(super) fn name(&self, id: Name) -> &str {
        self.names.text(id)
    }

    /// The account and region of `key`, and its type id.
    pub(super) fn key_scope<'k>(&mut self, key: &'k str) -> Option<(KeyScope, &'k str)> {
        let (account, region, type_id) = split_key(key)?;
        let scope = KeyScope {
            account: self.names.id(account),
            region: self.names.id(region),
        };
        Some((scope, type_id))
    }

    /// Row `index` of `batch` (decoded against `side`'s schema), kept.
    pub(super) fn keep(&mut self, side: Side, batch: &RecordBatch, index: usize) -> Row {
        let at = |column: &str| text_at(batch, column, index);
        let type_id = at("type_id").unwrap_or("");
        let id = id_of(type_id);
        let tf_type = at("tf_type").unwrap_or("");
        let (resource_type, texts) = match side {
            Side::Declared => (
                type_id.split_once('/').map_or(type_id, |(t, _)| t),
                DECLARED_TEXTS,
            ),
            Side::Observed => (at("resource_type").unwrap_or(""), OBSERVED_TEXTS),
        };
        let p = &self.projection;
        self.text.clear();
        for column in texts {
            let written = at(column);
            let cut = written.and_then(|doc| match *column {
                "attributes" => p.attributes_text(tf_type, doc),
                "configuration" => p.configuration_text(resource_type, doc),
                "supplementary_configuration" => p.supplementary_text(resource_type, doc),
                _ => None,
            });
            put_text(&mut self.text, cut.as_deref().or(written), id);
        }
        let status = at("status").unwrap_or("");
        let mut name = |text: &str| self.names.id(text);
        let (account, region, source) = (
            name(at("account").unwrap_or("")),
            name(at("region").unwrap_or("")),
            name(at("source").unwrap_or("")),
        );
        let resource_type = name(resource_type);
        let packing = match side {
            Side::Declared => &mut self.declared,
            Side::Observed => &mut self.observed,
        };
        let observed = side == Side::Observed;
        Row {
            packed: packing.pack(&self.text),
            account,
            region,
            resource_type,
            source,
            tf_type: self.names.id(if observed { "" } else { tf_type }),
            status: self.names.id(if observed { status } else { "" }),
            deposed: !observed && flag_at(batch, "deposed", index),
            summary_only: observed && flag_at(batch, "summary_only", index),
            not_recorded: observed && status == "ResourceNotRecorded",
        }
    }

    /// The rows as one batch of the columns the join and the diff read.
    pub(super) fn batch(&mut self, side: Side, rows: &[Kept]) -> Result<RecordBatch, ArrowError> {
        let schema = match side {
            Side::Declared => DECLARED_KEPT.clone(),
            Side::Observed => OBSERVED_KEPT.clone(),
        };
        let sources: Vec<Source> = schema
            .fields()
            .iter()
            .map(|f| source(side, f.name()))
            .collect();
        let n = rows.len();
        let mut texts: Vec<StringBuilder> = Vec::new();
        let mut flags: Vec<BooleanBuilder> = Vec::new();
        for s in &sources {
            match s {
                Source::Flag(_) => flags.push(BooleanBuilder::with_capacity(n)),
                _ => texts.push(StringBuilder::with_capacity(n, n * 32)),
            }
        }
        let mut unpacked = std::mem::take(&mut self.unpacked);
        for kept in rows {
            let r = kept.row;
            let packing = match side {
                Side::Declared => &mut self.declared,
                Side::Observed => &mut self.observed,
            };
            let raw = packing
                .unpack(&r.packed, &mut unpacked)
                .map_err(|e| ArrowError::ExternalError(e.into()))?;
            let own = take_texts(raw, id_of(kept.type_id))?;
            let (mut t, mut f) = (texts.iter_mut(), flags.iter_mut());
            for s in &sources {
                let value = match s {
                    Source::Flag(get) => {
                        f.next().expect("a builder per flag").append_value(get(r));
                        continue;
                    }
                    Source::TypeId => Some(kept.type_id),
                    Source::Named(get) => Some(self.names.text(get(r))),
                    Source::Text(i) => own[*i],
                };
                t.next().expect("a builder per text").append_option(value);
            }
        }
        self.unpacked = unpacked;
        let (mut t, mut f) = (texts.into_iter(), flags.into_iter());
        let columns: Vec<ArrayRef> = sources
            .iter()
            .map(|s| -> ArrayRef {
                match s {
                    Source::Flag(_) => Arc::new(f.next().expect("built").finish()),
                    _ => Arc::new(t.next().expect("built").finish()),
                }
            })
            .collect();
        RecordBatch::try_new(schema, columns)
    }
}

/// One side's snapshots of a resource, by the account and region of their
/// record key. Nearly always one: a vector of exactly that, where a map
/// would allocate a node for eleven per resource.
#[derive(Default)]
pub(super) struct Snapshots(Vec<(KeyScope, Row)>);

impl Snapshots {
    pub(super) fn insert(&mut self, scope: KeyScope, row: Row) {
        match self.0.iter_mut().find(|(s, _)| *s == scope) {
            Some((_, kept)) => *kept = row,
            None => {
                self.0.reserve_exact(1);
                self.0.push((scope, row));
            }
        }
    }

    pub(super) fn remove(&mut self, scope: KeyScope) {
        self.0.retain(|(s, _)| *s != scope);
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (KeyScope, &Row)> {
        self.0.iter().map(|(s, r)| (*s, r))
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Row> {
        self.0.iter().map(|(_, r)| r)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
