//! IaC coverage per account, region and AWS Config type: of the resources
//! AWS Config reports present, how many some state manages. Tallied from
//! the join's rows as they stream by, so the join is never materialised.

use std::hash::BuildHasher;

use arrow::array::{Array, AsArray, StringArray};
use arrow::record_batch::RecordBatch;
use driftline_pipeline::Coverage;

use crate::DetectorError;

/// Distinct resources (their type ids, hashed) per group, managed or not. A resource
/// several declared instances match is one resource.
#[derive(Default)]
pub(super) struct CoverageTally {
    /// `account \0 region \0 type` → (managed, unmanaged).
    groups: foldhash::HashMap<String, (foldhash::HashSet<u64>, foldhash::HashSet<u64>)>,
    key: String,
}

impl CoverageTally {
    /// Counts a batch of the join's rows.
    pub(super) fn add(&mut self, b: &RecordBatch) -> Result<(), DetectorError> {
        let col = |name: &str| -> Result<&StringArray, DetectorError> {
            b.column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(|| {
                    DetectorError::Internal(format!("the join has no text column {name}"))
                })
        };
        let (o_type_id, status, address) = (col("o_type_id")?, col("status")?, col("d_address")?);
        let (account, region, rtype) = (col("o_account")?, col("o_region")?, col("resource_type")?);
        for i in 0..b.num_rows() {
            if o_type_id.is_null(i) || !matches!(status.value(i), "OK" | "ResourceDiscovered") {
                continue;
            }
            self.key.clear();
            for part in [account.value(i), region.value(i), rtype.value(i)] {
                self.key.push_str(part);
                self.key.push('\0');
            }
            let group = match self.groups.get_mut(self.key.as_str()) {
                Some(g) => g,
                None => self.groups.entry(self.key.clone()).or_default(),
            };
            // Within its account and region, a type id is the resource's
            // key. A fixed seed: one hashes alike in every batch.
            let h = foldhash::fast::FixedState::with_seed(0).hash_one(o_type_id.value(i));
            if address.is_null(i) {
                group.1.insert(h);
            } else {
                group.0.insert(h);
            }
        }
        Ok(())
    }

    /// One row per group, by account, region and type.
    pub(super) fn finish(self) -> Vec<Coverage> {
        let mut out: Vec<Coverage> = self
            .groups
            .into_iter()
            .map(|(key, (managed, unmanaged))| {
                let mut parts = key.split('\0');
                let mut next = || parts.next().unwrap_or_default().to_string();
                let (account, region, resource_type) = (next(), next(), next());
                let (m, u) = (managed.len() as u64, unmanaged.len() as u64);
                Coverage {
                    account,
                    region,
                    resource_type,
                    managed: m,
                    unmanaged: u,
                    coverage: if m + u == 0 {
                        1.0
                    } else {
                        m as f64 / (m + u) as f64
                    },
                }
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.account, &a.region, &a.resource_type).cmp(&(
                &b.account,
                &b.region,
                &b.resource_type,
            ))
        });
        out
    }
}
