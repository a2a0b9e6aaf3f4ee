//! The comparison's input tables, `declared` and `observed`: only the rows
//! that can be compared, and of the observed the latest item per resource.
//!
//! A scan builds them as records arrive (`DriftInputs`, a sink the
//! collectors publish to): each chunk is projected to what the comparison
//! reads and turned into an Arrow batch on the publishing thread, so no
//! record outlives its chunk. Callers holding records already use
//! `register_snapshots`. Both end in `register_tables`.

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32DictionaryArray, StringArray, UInt64Array,
};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use driftline_pipeline::schema::{declared_batch, observed_batch};
use driftline_pipeline::{
    BusError, ComparisonCut, CutForComparison, DeclaredResource, KeptKeys, ObservedResource,
    Record, RecordSink, SourceStatus, Topic,
};
use hashbrown::hash_table::{Entry, HashTable};
use serde_json::Value;

use super::batcher::Batcher;
use super::digest::Digester;
use super::one_batch::OneBatchTable;
use super::{DriftProjection, DriftSummary, docs, udf};
use crate::DetectorError;
use crate::mappings::Mappings;

/// Rows per Arrow batch when registering snapshot records.
const BATCH_ROWS: usize = 64 * 1024;

/// A one-shot scan's sink: the input tables' batches, built as the
/// collectors publish, and the sources' statuses.
pub struct DriftInputs {
    cut: Arc<LoadCut>,
    batcher: Batcher<Read>,
}

/// What the sink gathered.
#[derive(Default)]
pub struct Read {
    pub declared: Vec<RecordBatch>,
    pub observed: Vec<RecordBatch>,
    pub statuses: Vec<SourceStatus>,
}

/// The comparison's cut, shared by the sink and the loaders it hands it to:
/// a declared resource is cut and digested alike by either.
#[derive(Debug)]
struct LoadCut {
    projection: DriftProjection,
    digests: Digester,
}

impl ComparisonCut for LoadCut {
    fn kept_keys(&self) -> &KeptKeys {
        self.projection.kept_keys()
    }

    fn cut_declared(&self, d: &mut DeclaredResource, attributes: &mut Value) {
        self.projection.declared_tree(d, attributes);
        d.cut = Some(CutForComparison {
            compared_digest: self.digests.declared_in(d, attributes),
        });
    }
}

impl DriftInputs {
    pub fn new(mappings: &Mappings) -> Self {
        let cut = Arc::new(LoadCut {
            projection: DriftProjection::new(mappings),
            digests: Digester::new(mappings),
        });
        let batches = cut.clone();
        Self {
            cut,
            batcher: Batcher::start(move |records, read| build(&batches, records, read)),
        }
    }

    /// What a loader feeding this sink may cut as it reads: what of items'
    /// documents to keep (saving building the rest), and a declared
    /// resource's attributes while they are a tree.
    pub fn comparison_cut(&self) -> Arc<dyn ComparisonCut> {
        self.cut.clone()
    }

    /// What was published, once every chunk is built.
    pub fn into_read(self) -> Result<Read, BusError> {
        self.batcher.finish()
    }
}

impl LoadCut {
    /// A declared row's digest: the loader's, where it cut the row.
    fn declared_digest(&self, d: &DeclaredResource) -> Option<u64> {
        let Some(cut) = d.cut else {
            return self.digests.declared(d);
        };
        // Every test runs in a debug build: the tree's digest must be the
        // text's.
        debug_assert_eq!(
            cut.compared_digest,
            self.digests.declared(d),
            "{}",
            d.address
        );
        cut.compared_digest
    }
}

impl RecordSink for DriftInputs {
    fn publish(&self, _topic: Topic, records: Vec<Record>) -> Result<(), BusError> {
        self.batcher.send(records)
    }
}

/// A chunk's records as batches of what the comparison reads, added to
/// `read` (on the batch thread, `batcher.rs`, which hands the records back
/// to be freed by the thread that made them).
fn build(cut: &LoadCut, records: &mut [Record], read: &Mutex<Read>) -> Result<(), BusError> {
    let (mut declared, mut observed, mut statuses) = (Vec::new(), Vec::new(), Vec::new());
    for r in records.iter_mut() {
        let cut_by_loader = matches!(&r, Record::Declared(d) if d.cut.is_some());
        if !cut_by_loader {
            cut.projection.apply(r);
        }
        match r {
            Record::Declared(d) => declared.push(&**d),
            Record::Observed(o) => observed.push(&**o),
            Record::Status(s) => statuses.push((**s).clone()),
            // A one-shot read publishes no tombstones, and reports its
            // dead letters as errors.
            _ => {}
        }
    }
    let declared = chunk_batch(&declared, |rows| {
        declared_batch(rows)
            .and_then(|b| kept_columns(b, docs::DECLARED_JOINED.iter().chain(DECLARED_ALSO_KEPT)))
            .and_then(|b| with_digests(b, rows.iter().map(|d| cut.declared_digest(d))))
            .and_then(dictionary_encoded)
    })?;
    let observed = chunk_batch(&observed, |rows| {
        observed_batch(rows)
            .and_then(|b| kept_columns(b, docs::OBSERVED_JOINED.iter().chain(OBSERVED_ALSO_KEPT)))
            .and_then(|b| with_digests(b, rows.iter().map(|o| cut.digests.observed(o))))
            .and_then(dictionary_encoded)
    })?;
    let mut read = read.lock().unwrap_or_else(|e| e.into_inner());
    read.declared.extend(declared);
    read.observed.extend(observed);
    read.statuses.extend(statuses);
    Ok(())
}

/// Of a declared chunk, the scan holds until the join the joined columns
/// (`docs::DECLARED_JOINED`) and these: the attributes, and the mode
/// `register_tables` tells data sources by. Provider, status, serial,
/// lineage and the read time are only carried by a store's history (about
/// 90 MB at 1 M resources).
const DECLARED_ALSO_KEPT: &[&str] = &["mode", "attributes"];

/// Of an observed chunk: the documents, and the capture time
/// `register_tables` picks each resource's latest item by. Not the resource
/// key (70 MB at 1 M items, never read: `docs::OBSERVED_JOINED`).
const OBSERVED_ALSO_KEPT: &[&str] = &[
    "captured_at",
    "configuration",
    "supplementary_configuration",
];

/// `b` with its rows' compared digests as one more column.
fn with_digests(
    b: RecordBatch,
    digests: impl Iterator<Item = Option<u64>>,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let (schema, mut columns, _) = b.into_parts();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(docs::COMPARED_DIGEST, DataType::UInt64, true));
    columns.push(Arc::new(UInt64Array::from_iter(digests)));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

fn kept_columns<'n>(
    b: RecordBatch,
    names: impl Iterator<Item = &'n &'n str>,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let schema = b.schema();
    let indices = names
        .map(|n| schema.index_of(n))
        .collect::<Result<Vec<_>, _>>()?;
    b.project(&indices)
}

/// Columns that repeat a few values across a chunk: the file read, the
/// account, the region, the types, the mode and the item status. Held as
/// dictionaries, they cost a 4-byte key a row instead of the text (the
/// file's path alone was 90 MB at 1 M resources). The join reads them as
/// they are; its answer names them as text again (`pairs_sql`).
const REPEATING: &[&str] = &[
    "source",
    "account",
    "region",
    "tf_type",
    "mode",
    "resource_type",
    "status",
];

fn dictionary_encoded(b: RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let (schema, mut columns, _) = b.into_parts();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for (f, c) in fields.iter_mut().zip(columns.iter_mut()) {
        if REPEATING.contains(&f.name().as_str()) && f.data_type() == &DataType::Utf8 {
            *c = arrow::compute::cast(c, &dictionary)?;
            *f = f.clone().with_data_type(dictionary.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// One chunk's records as a compact batch; none for no records.
fn chunk_batch<T>(
    rows: &[&T],
    build: impl Fn(&[&T]) -> Result<RecordBatch, arrow::error::ArrowError>,
) -> Result<Option<RecordBatch>, BusError> {
    if rows.is_empty() {
        return Ok(None);
    }
    build(rows)
        .and_then(shrunk)
        .map(Some)
        .map_err(|e| BusError::Encode(e.to_string()))
}

/// The batch without the spare capacity its builders reserved: the scan
/// holds every batch until the join.
fn shrunk(b: RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    let (schema, columns, _) = b.into_parts();
    let columns = columns
        .into_iter()
        .map(|mut c| {
            if let Some(a) = Arc::get_mut(&mut c) {
                a.shrink_to_fit();
            }
            c
        })
        .collect();
    RecordBatch::try_new(schema, columns)
}

/// Registers `declared` and `observed` from records (see `register_tables`).
pub fn register_snapshots(
    ctx: &SessionContext,
    mappings: &Arc<Mappings>,
    declared: &[DeclaredResource],
    observed: &[ObservedResource],
) -> Result<DriftSummary, DetectorError> {
    let declared = build_batches(&declared.iter().collect::<Vec<_>>(), declared_batch)?;
    let observed = build_batches(&observed.iter().collect::<Vec<_>>(), observed_batch)?;
    register_tables(ctx, mappings, declared, observed)
}

/// Batches of `rows`, built on every core (JSON serialisation dominates).
fn build_batches<T: Sync>(
    rows: &[&T],
    build: impl Fn(&[&T]) -> Result<RecordBatch, arrow::error::ArrowError> + Sync,
) -> Result<Vec<RecordBatch>, DetectorError> {
    let chunks: Vec<&[&T]> = rows.chunks(BATCH_ROWS).collect();
    let per = chunks.len().div_ceil(cores()).max(1);
    let built: Vec<Result<RecordBatch, arrow::error::ArrowError>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .chunks(per)
            .map(|group| s.spawn(|| group.iter().map(|c| build(c)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    Ok(built.into_iter().collect::<Result<_, _>>()?)
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Registers the comparable rows of `declared` and `observed` batches in
/// `ctx`, keeping the latest observed item per resource. Returns the counts
/// of what was and was not comparable, for `DriftDetector::run`.
pub fn register_tables(
    ctx: &SessionContext,
    mappings: &Arc<Mappings>,
    declared: Vec<RecordBatch>,
    observed: Vec<RecordBatch>,
) -> Result<DriftSummary, DetectorError> {
    let mut summary = DriftSummary::default();
    let text = |b: &RecordBatch, name: &str| -> Result<Text, DetectorError> {
        b.column_by_name(name).and_then(Text::of).ok_or_else(|| {
            DetectorError::Internal(format!("snapshot batch has no text column {name}"))
        })
    };
    let mut comparable_d = Vec::with_capacity(declared.len());
    // Each batch is dropped once filtered, so the two never all coexist.
    for b in declared {
        let (mode, tf_type, type_id) = (
            text(&b, "mode")?,
            text(&b, "tf_type")?,
            text(&b, "type_id")?,
        );
        let keep: BooleanArray = (0..b.num_rows())
            .map(|i| {
                if mode.value(i) == "data" {
                    summary.declared_data_sources += 1;
                    return Some(false);
                }
                summary.declared_instances += 1;
                let t = tf_type.value(i);
                let comparable = !type_id.value(i).is_empty() && mappings.by_tf_type(t).is_some();
                if !comparable {
                    *summary.not_comparable.entry(t.to_string()).or_default() += 1;
                }
                Some(comparable)
            })
            .collect();
        comparable_d.push(kept_rows(b, &keep)?);
    }
    // Latest capture per resource: history files hold many items of one
    // resource. A later arrival wins a tie. The table holds where each
    // latest item lies (16 bytes) and reads its account, region and type id
    // (which its key is made of) from the batch: a million resources' keys
    // would be a 150 MB map of their own.
    let mut columns = Vec::with_capacity(observed.len());
    for b in &observed {
        let captured = b
            .column_by_name("captured_at")
            .and_then(|c| c.as_primitive_opt::<Int64Type>().cloned())
            .ok_or_else(|| DetectorError::Internal("snapshot batch has no captured_at".into()))?;
        columns.push(ItemColumns {
            account: text(b, "account")?,
            region: text(b, "region")?,
            type_id: text(b, "type_id")?,
            resource_type: text(b, "resource_type")?,
            captured,
        });
    }
    let resource = |at: &Latest| columns[at.batch as usize].resource(at.row as usize);
    let state = foldhash::fast::FixedState::with_seed(0);
    // Sized for every item at once: growing it would hash each key again,
    // reading its three texts from wherever its batch lies.
    let items = columns.iter().map(|c| c.type_id.len()).sum();
    let mut latest: HashTable<Latest> = HashTable::with_capacity(items);
    for (bi, c) in columns.iter().enumerate() {
        for i in 0..c.type_id.len() {
            summary.observed_items += 1;
            let t = c.resource_type.value(i);
            if mappings.by_config_type(t).is_none() {
                *summary.unmapped_observed.entry(t.to_string()).or_default() += 1;
                continue;
            }
            let item = Latest {
                batch: bi as u32,
                row: i as u32,
                captured: if c.captured.is_null(i) {
                    i64::MIN
                } else {
                    c.captured.value(i)
                },
            };
            let r = c.resource(i);
            match latest.entry(
                state.hash_one(r),
                |e| resource(e) == r,
                |e| state.hash_one(resource(e)),
            ) {
                Entry::Occupied(mut e) => {
                    if item.captured >= e.get().captured {
                        *e.get_mut() = item;
                    }
                }
                Entry::Vacant(e) => {
                    e.insert(item);
                }
            }
        }
    }
    let mut keep: Vec<Vec<bool>> = observed.iter().map(|b| vec![false; b.num_rows()]).collect();
    for at in latest {
        keep[at.batch as usize][at.row as usize] = true;
    }
    drop(columns);
    let comparable_o = observed
        .into_iter()
        .zip(keep)
        .map(|(b, k)| kept_rows(b, &BooleanArray::from(k)))
        .collect::<Result<Vec<_>, _>>()?;
    register_compared(ctx, mappings.clone(), comparable_d, comparable_o, cores())?;
    Ok(summary)
}

/// The rows of `b` that `keep` marks; `b` itself when that is all of them,
/// as it mostly is, rather than a copy of it beside it.
fn kept_rows(b: RecordBatch, keep: &BooleanArray) -> Result<RecordBatch, arrow::error::ArrowError> {
    if keep.true_count() == b.num_rows() {
        return Ok(b);
    }
    filter_record_batch(&b, keep)
}

/// Where an observed item lies, and when it was captured.
struct Latest {
    batch: u32,
    row: u32,
    captured: i64,
}

/// The columns of an observed batch that pick each resource's latest item.
struct ItemColumns {
    account: Text,
    region: Text,
    type_id: Text,
    resource_type: Text,
    captured: arrow::array::Int64Array,
}

impl ItemColumns {
    /// What the item's resource key is made of.
    fn resource(&self, i: usize) -> (&str, &str, &str) {
        (
            self.account.value(i),
            self.region.value(i),
            self.type_id.value(i),
        )
    }
}

/// A text column of a snapshot batch, held as text or as a dictionary.
enum Text {
    Plain(StringArray),
    Dictionary(Int32DictionaryArray, StringArray),
}

impl Text {
    fn of(c: &ArrayRef) -> Option<Self> {
        if let Some(d) = c.as_dictionary_opt::<Int32Type>() {
            let values = d.values().as_string_opt::<i32>()?.clone();
            return Some(Self::Dictionary(d.clone(), values));
        }
        c.as_string_opt::<i32>().cloned().map(Self::Plain)
    }

    fn len(&self) -> usize {
        match self {
            Self::Plain(a) => a.len(),
            Self::Dictionary(d, _) => d.len(),
        }
    }

    /// The row's text; a null reads as empty.
    fn value(&self, i: usize) -> &str {
        match self {
            Self::Plain(a) => a.value(i),
            Self::Dictionary(d, _) if d.is_null(i) => "",
            Self::Dictionary(d, values) => values.value(d.keys().value(i) as usize),
        }
    }
}

/// Registers `declared` and `observed` (comparable rows only) in `ctx`,
/// split into the joined columns and the documents (`docs`), and the
/// functions that read the documents back: `drift_diff` and
/// `drift_declared_tags`. `partitions` partitions `observed`, the join's
/// probe side, so the join runs in parallel; `declared` is its build side,
/// held as one batch.
pub(super) fn register_compared(
    ctx: &SessionContext,
    mappings: Arc<Mappings>,
    declared: Vec<RecordBatch>,
    observed: Vec<RecordBatch>,
    partitions: usize,
) -> Result<(), DetectorError> {
    let (docs, slim_d, slim_o) = docs::split_documents(declared, observed)?;
    let docs = Arc::new(docs);
    // The batches' own schema: a scan's hold some columns as dictionaries.
    let schema_of = |b: &[RecordBatch], default: fn() -> SchemaRef| {
        b.first().map(RecordBatch::schema).unwrap_or_else(default)
    };
    let (schema_d, schema_o) = (
        schema_of(&slim_d, docs::declared_schema),
        schema_of(&slim_o, docs::observed_schema),
    );
    // The join's build side: handed to it whole (`one_batch`).
    let table = OneBatchTable::new(schema_d, slim_d)?;
    ctx.deregister_table("declared")?;
    ctx.register_table("declared", Arc::new(table))?;
    register(ctx, "observed", slim_o, schema_o, partitions)?;
    ctx.register_udf(udf::drift_diff(mappings, docs.clone()));
    ctx.register_udf(udf::declared_tags(docs));
    Ok(())
}

fn register(
    ctx: &SessionContext,
    name: &str,
    batches: Vec<RecordBatch>,
    schema: SchemaRef,
    partitions: usize,
) -> Result<(), DetectorError> {
    let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); partitions.max(1)];
    let n = parts.len();
    for (i, b) in batches.into_iter().enumerate() {
        parts[i % n].push(b);
    }
    let table = MemTable::try_new(schema, parts)?;
    ctx.deregister_table(name)?;
    ctx.register_table(name, Arc::new(table))?;
    Ok(())
}
