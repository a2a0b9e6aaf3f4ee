//! A table of one batch, scanned as that batch.
//!
//! The hash join copies its build side into one batch. A `MemTable` slices
//! what it holds into `batch_size` rows as it is scanned, so a build side
//! already held as one batch is copied anyway, and both copies live while
//! the join runs (100 MB at a million declared resources). This table
//! hands the join its batch whole, so the join's copy is the batch itself.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatchOptions};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result as DfResult, Statistics};
use datafusion::datasource::TableType;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};

/// The table: `batch`, or no rows.
#[derive(Debug)]
pub(super) struct OneBatchTable {
    schema: SchemaRef,
    batch: Option<RecordBatch>,
}

impl OneBatchTable {
    /// The table of `batches`, joined into one a column at a time: each
    /// column's parts are dropped as soon as they are joined, so the
    /// batches and their join never all coexist.
    pub(super) fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Self, ArrowError> {
        let batch = match batches.len() {
            0 => None,
            1 => batches.into_iter().next(),
            n => {
                let rows = batches.iter().map(RecordBatch::num_rows).sum();
                let mut parts: Vec<Vec<ArrayRef>> =
                    vec![Vec::with_capacity(n); schema.fields().len()];
                for b in batches {
                    for (column, c) in parts.iter_mut().zip(b.columns()) {
                        column.push(c.clone());
                    }
                }
                let mut columns = Vec::with_capacity(parts.len());
                for column in parts.iter_mut() {
                    let column = std::mem::take(column);
                    let arrays: Vec<&dyn Array> = column.iter().map(|a| a.as_ref()).collect();
                    columns.push(arrow::compute::concat(&arrays)?);
                }
                let options = RecordBatchOptions::new().with_row_count(Some(rows));
                Some(RecordBatch::try_new_with_options(
                    schema.clone(),
                    columns,
                    &options,
                )?)
            }
        };
        Ok(Self { schema, batch })
    }
}

#[async_trait]
impl TableProvider for OneBatchTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let (schema, batch) = match projection {
            Some(p) => (
                Arc::new(self.schema.project(p)?),
                self.batch.as_ref().map(|b| b.project(p)).transpose()?,
            ),
            None => (self.schema.clone(), self.batch.clone()),
        };
        Ok(Arc::new(OneBatchExec::new(schema, batch)))
    }
}

/// The scan of a `OneBatchTable`: one partition, one batch.
#[derive(Debug)]
struct OneBatchExec {
    batch: Option<RecordBatch>,
    properties: Arc<PlanProperties>,
}

impl OneBatchExec {
    fn new(schema: SchemaRef, batch: Option<RecordBatch>) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            batch,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for OneBatchExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let rows = self.batch.as_ref().map_or(0, RecordBatch::num_rows);
        write!(f, "OneBatchExec: rows={rows}")
    }
}

impl ExecutionPlan for OneBatchExec {
    fn name(&self) -> &str {
        "OneBatchExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let batches = self.batch.clone().into_iter().map(Ok);
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.properties.eq_properties.schema().clone(),
            futures::stream::iter(batches),
        )))
    }

    fn partition_statistics(&self, _partition: Option<usize>) -> DfResult<Arc<Statistics>> {
        let schema = self.properties.eq_properties.schema();
        let mut s = Statistics::new_unknown(schema);
        s.num_rows = Precision::Exact(self.batch.as_ref().map_or(0, RecordBatch::num_rows));
        Ok(Arc::new(s))
    }
}
