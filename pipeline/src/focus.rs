//! The cost table, `focus_data_table`: the FOCUS columns (1.0, 1.1, 1.2)
//! and its schema. It lives in the spine for the reason the drift tables
//! do (`model.rs`): it is the contract between the collector that fills it
//! (`collectors/src/cost/`) and the SQL that reads it (`store/sql.rs`).
//! Column names are exactly FOCUS's, so the FOCUS specification's example
//! queries run unchanged; driftline's own columns start with `x_`, as
//! FOCUS asks of custom columns.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// How a column's text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// A FOCUS decimal (costs, prices, quantities).
    Decimal,
    /// A FOCUS date/time (UTC).
    DateTime,
    /// A JSON object kept as text (`SkuPriceDetails`); `Tags` is read
    /// apart (see `tags.rs`).
    Json,
}

/// Every FOCUS 1.0–1.2 column, in the specification's order of sections.
pub const FOCUS_COLUMNS: &[(&str, Kind)] = &[
    ("AvailabilityZone", Kind::Text),
    ("BilledCost", Kind::Decimal),
    ("BillingAccountId", Kind::Text),
    ("BillingAccountName", Kind::Text),
    ("BillingAccountType", Kind::Text),
    ("BillingCurrency", Kind::Text),
    ("BillingPeriodEnd", Kind::DateTime),
    ("BillingPeriodStart", Kind::DateTime),
    ("CapacityReservationId", Kind::Text),
    ("CapacityReservationStatus", Kind::Text),
    ("ChargeCategory", Kind::Text),
    ("ChargeClass", Kind::Text),
    ("ChargeDescription", Kind::Text),
    ("ChargeFrequency", Kind::Text),
    ("ChargePeriodEnd", Kind::DateTime),
    ("ChargePeriodStart", Kind::DateTime),
    ("CommitmentDiscountCategory", Kind::Text),
    ("CommitmentDiscountId", Kind::Text),
    ("CommitmentDiscountName", Kind::Text),
    ("CommitmentDiscountQuantity", Kind::Decimal),
    ("CommitmentDiscountStatus", Kind::Text),
    ("CommitmentDiscountType", Kind::Text),
    ("CommitmentDiscountUnit", Kind::Text),
    ("ConsumedQuantity", Kind::Decimal),
    ("ConsumedUnit", Kind::Text),
    ("ContractedCost", Kind::Decimal),
    ("ContractedUnitPrice", Kind::Decimal),
    ("EffectiveCost", Kind::Decimal),
    ("InvoiceId", Kind::Text),
    ("InvoiceIssuerName", Kind::Text),
    ("ListCost", Kind::Decimal),
    ("ListUnitPrice", Kind::Decimal),
    ("PricingCategory", Kind::Text),
    ("PricingCurrency", Kind::Text),
    ("PricingCurrencyContractedUnitPrice", Kind::Decimal),
    ("PricingCurrencyEffectiveCost", Kind::Decimal),
    ("PricingCurrencyListUnitPrice", Kind::Decimal),
    ("PricingQuantity", Kind::Decimal),
    ("PricingUnit", Kind::Text),
    ("ProviderName", Kind::Text),
    ("PublisherName", Kind::Text),
    ("RegionId", Kind::Text),
    ("RegionName", Kind::Text),
    ("ResourceId", Kind::Text),
    ("ResourceName", Kind::Text),
    ("ResourceType", Kind::Text),
    ("ServiceCategory", Kind::Text),
    ("ServiceName", Kind::Text),
    ("ServiceSubcategory", Kind::Text),
    ("SkuId", Kind::Text),
    ("SkuMeter", Kind::Text),
    ("SkuPriceDetails", Kind::Json),
    ("SkuPriceId", Kind::Text),
    ("SubAccountId", Kind::Text),
    ("SubAccountName", Kind::Text),
    ("SubAccountType", Kind::Text),
];

/// `Tags`, as the export wrote it once cleaned: a JSON object of strings
/// (keys trimmed, a valueless tag `"true"`).
pub const TAGS: &str = "Tags";
/// The same tags as two parallel arrays, which both stores can unnest
/// (ClickHouse 18.16 has no Map type).
pub const TAG_KEYS: &str = "x_TagKeys";
pub const TAG_VALUES: &str = "x_TagValues";
/// Every column the export had beyond FOCUS's (its own `x_` columns and
/// any other), as a JSON object of strings.
pub const EXTRA: &str = "x_Extra";
/// Where the row came from: the file (or object) and its line (CSV) or
/// row number (Parquet), counted from 1 with the header as line 1.
pub const SOURCE_FILE: &str = "x_SourceFile";
pub const SOURCE_LINE: &str = "x_SourceLine";

/// The time zone of every date/time column.
pub const UTC: &str = "+00:00";

/// The name of the cost table in every store.
pub const TABLE: &str = "focus_data_table";

/// The Arrow type a column of `kind` has in the stores.
pub fn data_type(kind: Kind) -> DataType {
    match kind {
        Kind::Text | Kind::Json => DataType::Utf8,
        Kind::Decimal => DataType::Float64,
        // An offset, not a zone name: arrow reads zone names only with
        // chrono-tz, which neither it nor DataFusion is built with here.
        Kind::DateTime => DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into())),
    }
}

/// The schema of `focus_data_table`: FOCUS's columns, then driftline's.
pub fn schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let list = || DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        let mut fields: Vec<Field> = FOCUS_COLUMNS
            .iter()
            .map(|(name, kind)| Field::new(*name, data_type(*kind), true))
            .collect();
        fields.extend([
            Field::new(TAGS, DataType::Utf8, true),
            Field::new(TAG_KEYS, list(), false),
            Field::new(TAG_VALUES, list(), false),
            Field::new(EXTRA, DataType::Utf8, true),
            Field::new(SOURCE_FILE, DataType::Utf8, false),
            Field::new(SOURCE_LINE, DataType::Int64, false),
        ]);
        Arc::new(Schema::new(fields))
    });
    SCHEMA.clone()
}

/// The FOCUS column a header names: FOCUS's own spelling, or the same
/// letters in another case (some exports write `BillingAccountID`).
pub fn focus_column(header: &str) -> Option<usize> {
    let h = header.trim();
    FOCUS_COLUMNS
        .iter()
        .position(|(name, _)| *name == h)
        .or_else(|| {
            FOCUS_COLUMNS
                .iter()
                .position(|(name, _)| name.eq_ignore_ascii_case(h))
        })
}
