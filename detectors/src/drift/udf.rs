//! The functions the drift join calls on each pair: `drift_diff`, the
//! per-type mapping's comparison (`compare`), and `drift_declared_tags`,
//! a gone resource's declared tags. Both read the documents by reference
//! (`docs`), so the join never carries them.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray, StringBuilder};
use arrow::datatypes::DataType;
use arrow::datatypes::UInt64Type;
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use super::compare;
use super::docs::Docs;
use crate::mappings::Mappings;

/// DataFusion tells functions apart by equality and hash: one instance
/// per set of shared data it reads.
macro_rules! identity {
    ($udf:ty, $name:literal, $($shared:ident),+) => {
        impl PartialEq for $udf {
            fn eq(&self, other: &Self) -> bool {
                true $(&& Arc::ptr_eq(&self.$shared, &other.$shared))+
            }
        }
        impl Eq for $udf {}
        impl Hash for $udf {
            fn hash<H: Hasher>(&self, state: &mut H) {
                $name.hash(state);
            }
        }
    };
}

/// The function, comparing with `mappings` the documents in `docs`.
pub(super) fn drift_diff(mappings: Arc<Mappings>, docs: Arc<Docs>) -> ScalarUDF {
    use DataType::{UInt64, Utf8};
    ScalarUDF::new_from_impl(DriftDiffUdf {
        mappings,
        docs,
        signature: Signature::new(
            TypeSignature::Exact(vec![
                Utf8, UInt64, Utf8, UInt64, Utf8, Utf8, Utf8, UInt64, UInt64,
            ]),
            Volatility::Immutable,
        ),
    })
}

/// `drift_diff(tf_type, attributes_ref, resource_id, configuration_ref,
/// tags, resource_name, arn, declared_digest, observed_digest)` → JSON
/// array of differing paths (`[]` when none). Two equal digests
/// (`digest.rs`) say there are none without reading the documents.
#[derive(Debug)]
struct DriftDiffUdf {
    mappings: Arc<Mappings>,
    docs: Arc<Docs>,
    signature: Signature,
}

identity!(DriftDiffUdf, "drift_diff", mappings, docs);

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
        let text = |i: usize| arrays[i].as_string::<i32>();
        let (tf_type, rid, tags, name, arn) = (text(0), text(2), text(4), text(5), text(6));
        let number = |i: usize| arrays[i].as_primitive::<UInt64Type>();
        let (attrs, conf) = (number(1), number(3));
        let (d_digest, o_digest) = (number(7), number(8));
        let mut out = StringBuilder::with_capacity(args.number_rows, args.number_rows * 2);
        let external = |e: serde_json::Error| DataFusionError::External(Box::new(e));
        fn opt(a: &StringArray, i: usize) -> Option<&str> {
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
            let alike = d_digest.is_valid(i)
                && o_digest.is_valid(i)
                && d_digest.value(i) == o_digest.value(i);
            // A debug build (every test) diffs alike pairs too, to prove
            // the digests right on every input the tests read.
            if alike && !cfg!(debug_assertions) {
                out.append_value("[]");
                continue;
            }
            let (d, o) = (attrs.value(i), conf.value(i));
            let observed_tags: serde_json::Value =
                serde_json::from_str(opt(tags, i).unwrap_or("{}")).map_err(external)?;
            let declared =
                compare::Doc::parse(self.docs.attributes(d).unwrap_or("{}")).map_err(external)?;
            let side = compare::ObservedSide {
                configuration: compare::Doc::parse(self.docs.configuration(o).unwrap_or("{}"))
                    .map_err(external)?,
                supplementary: compare::Doc::parse(self.docs.supplementary(o).unwrap_or("{}"))
                    .map_err(external)?,
                tags: &observed_tags,
                resource_name: opt(name, i),
                arn: opt(arn, i),
            };
            let diffs = compare::diff(mapping, &declared, &side, rid.value(i));
            if alike && let Some(d) = diffs.first() {
                return Err(DataFusionError::Internal(format!(
                    "{}: the compared digests are equal, yet {} differs",
                    rid.value(i),
                    d.path
                )));
            }
            if diffs.is_empty() {
                out.append_value("[]");
            } else {
                out.append_value(serde_json::to_string(&diffs).map_err(external)?);
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `drift_declared_tags(attributes_ref)` → the declared `tags` attribute
/// as JSON text, or null: what a finding on a resource that is gone
/// carries as its tags.
pub(super) fn declared_tags(docs: Arc<Docs>) -> ScalarUDF {
    ScalarUDF::new_from_impl(DeclaredTagsUdf {
        docs,
        signature: Signature::new(
            TypeSignature::Exact(vec![DataType::UInt64]),
            Volatility::Immutable,
        ),
    })
}

#[derive(Debug)]
struct DeclaredTagsUdf {
    docs: Arc<Docs>,
    signature: Signature,
}

identity!(DeclaredTagsUdf, "drift_declared_tags", docs);

impl ScalarUDFImpl for DeclaredTagsUdf {
    fn name(&self) -> &str {
        "drift_declared_tags"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays: Vec<ArrayRef> = ColumnarValue::values_to_arrays(&args.args)?;
        let refs = arrays[0].as_primitive::<UInt64Type>();
        let mut out = StringBuilder::new();
        for i in 0..args.number_rows {
            let tags = (!refs.is_null(i))
                .then(|| self.docs.attributes(refs.value(i)))
                .flatten()
                .and_then(|text| compare::Doc::parse(text).ok()?.get("tags"))
                .filter(serde_json::Value::is_object);
            match tags {
                Some(t) => out.append_value(t.to_string()),
                None => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
