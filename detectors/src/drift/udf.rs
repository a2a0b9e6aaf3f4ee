//! The `drift_diff` scalar function the drift join calls on each pair: the
//! per-type mapping's comparison (`compare`), run inside DataFusion.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use super::compare;
use crate::mappings::Mappings;

/// The function, comparing with `mappings`.
pub(super) fn drift_diff(mappings: Arc<Mappings>) -> ScalarUDF {
    ScalarUDF::new_from_impl(DriftDiffUdf {
        mappings,
        signature: Signature::new(
            TypeSignature::Exact(vec![DataType::Utf8; 8]),
            Volatility::Immutable,
        ),
    })
}

/// `drift_diff(tf_type, attributes, resource_id, configuration,
/// supplementary_configuration, tags, resource_name, arn)` → JSON array of
/// differing paths (`[]` when none).
#[derive(Debug)]
struct DriftDiffUdf {
    mappings: Arc<Mappings>,
    signature: Signature,
}

impl PartialEq for DriftDiffUdf {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.mappings, &other.mappings)
    }
}
impl Eq for DriftDiffUdf {}
impl Hash for DriftDiffUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        "drift_diff".hash(state);
    }
}

impl ScalarUDFImpl for DriftDiffUdf {
    fn name(&self) -> &str {
        "drift_diff"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays: Vec<ArrayRef> = ColumnarValue::values_to_arrays(&args.args)?;
        let s: Vec<_> = arrays.iter().map(|a| a.as_string::<i32>()).collect();
        let (tf_type, attrs, rid, conf, supp, tags, name, arn) =
            (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
        let mut out = StringBuilder::with_capacity(args.number_rows, args.number_rows * 2);
        let external = |e: serde_json::Error| DataFusionError::External(Box::new(e));
        fn opt(a: &arrow::array::StringArray, i: usize) -> Option<&str> {
            (!a.is_null(i)).then(|| a.value(i))
        }
        for i in 0..args.number_rows {
            if tf_type.is_null(i) || attrs.is_null(i) || conf.is_null(i) {
                out.append_null();
                continue;
            }
            let Some(mapping) = self.mappings.by_tf_type(tf_type.value(i)) else {
                out.append_null();
                continue;
            };
            let declared = compare::Doc::parse(attrs.value(i)).map_err(external)?;
            let side = compare::ObservedSide {
                configuration: compare::Doc::parse(conf.value(i)).map_err(external)?,
                supplementary: compare::Doc::parse(opt(supp, i).unwrap_or("{}"))
                    .map_err(external)?,
                tags: serde_json::from_str(opt(tags, i).unwrap_or("{}")).map_err(external)?,
                resource_name: opt(name, i),
                arn: opt(arn, i),
            };
            let diffs = compare::diff(mapping, &declared, &side, rid.value(i));
            if diffs.is_empty() {
                out.append_value("[]");
            } else {
                out.append_value(serde_json::to_string(&diffs).map_err(external)?);
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
