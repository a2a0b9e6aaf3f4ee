use arrow::array::{Array, AsArray, Float64Array, TimestampMillisecondArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;

use super::export::read_csv_bytes;
use super::*;

fn read(text: &str) -> (Vec<RecordBatch>, export::ExportRead) {
    let mut batches = Vec::new();
    let read = read_csv_bytes(text.as_bytes(), "export.csv", &mut |b| {
        batches.push(b);
        Ok(())
    })
    .unwrap();
    (batches, read)
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> &'a dyn Array {
    b.column(b.schema().index_of(name).unwrap()).as_ref()
}

#[test]
fn messy_exports_lose_no_row() {
    let text = "\u{feff}BilledCost,EffectiveCost,ChargePeriodStart,BillingPeriodStart,ServiceName,SubAccountId,ResourceId,Tags,x_Operation,CostCenterLegacy\n\
        1.5,1.25,2024-09-01T00:00:00Z,2024-09-01 00:00:00,Amazon EC2,111,i-1,\"{\"\" team \"\": \"\"payments\"\", \"\"backup\"\": true}\",RunInstances,cc-9\n\
        NULL,2,2024-09-02 10:00:00,2024-09-01T00:00:00.000Z,Amazon S3,111,NULL,NULL,NULL,\n\
        oops,1,2024-09-02T00:00:00Z,2024-09-01T00:00:00Z,Amazon S3,111,b,NULL,x,y\n\
        1,1,not-a-date,2024-09-01T00:00:00Z,Amazon S3,111,b,NULL,x,y\n\
        1,1\n";
    let (batches, read) = read(text);
    assert_eq!(read.rows, 2);
    let reasons: Vec<String> = read.rejected.iter().map(|e| e.to_string()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].starts_with("export.csv:4: BilledCost: \"oops\""),
        "{reasons:?}"
    );
    assert!(
        reasons[1].starts_with("export.csv:5: ChargePeriodStart"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].starts_with("export.csv:6: 2 fields"),
        "{reasons:?}"
    );
    assert!(read.notes[0].contains("x_Operation, CostCenterLegacy"));

    let b = &batches[0];
    assert_eq!(b.schema(), schema());
    let billed: &Float64Array = column(b, "BilledCost").as_primitive();
    assert_eq!(billed.value(0), 1.5);
    assert!(billed.is_null(1), "literal NULL is null");
    let start: &TimestampMillisecondArray = column(b, "ChargePeriodStart").as_primitive();
    assert_eq!(
        start.value(1),
        1_725_271_200_000,
        "space-separated datetime"
    );
    assert!(matches!(
        column(b, "BillingPeriodStart").data_type(),
        DataType::Timestamp(_, Some(_))
    ));
    let tags = column(b, "Tags").as_string::<i32>();
    assert_eq!(tags.value(0), r#"{"backup":"true","team":"payments"}"#);
    let keys = column(b, "x_TagKeys").as_list::<i32>();
    assert_eq!(keys.value(0).as_string::<i32>().value(1), "team");
    assert_eq!(keys.value(1).len(), 0);
    let extra = column(b, "x_Extra").as_string::<i32>();
    assert_eq!(
        extra.value(0),
        r#"{"CostCenterLegacy":"cc-9","x_Operation":"RunInstances"}"#
    );
    let line = column(b, "x_SourceLine").as_primitive::<arrow::datatypes::Int64Type>();
    assert_eq!((line.value(0), line.value(1)), (2, 3));
}

#[test]
fn a_file_without_focus_columns_is_refused_with_its_reason() {
    let e = read_csv_bytes(b"a,b\n1,2\n", "x.csv", &mut |_| Ok(()))
        .err()
        .unwrap();
    assert!(
        e.contains(
            "line 1: not a FOCUS cost and usage export: no BilledCost or ChargePeriodStart column"
        ),
        "{e}"
    );
}

#[test]
fn gzip_and_parquet_exports_give_the_same_rows_as_csv() {
    use std::io::Write;
    let text = "BilledCost,ChargePeriodStart,ServiceName,Tags\n2.5,2024-09-01T00:00:00Z,Compute,\"{\"\"env\"\":\"\"prod\"\"}\"\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let mut from_gz = Vec::new();
    read_csv_bytes(&gz, "e.csv.gz", &mut |b| {
        from_gz.push(b);
        Ok(())
    })
    .unwrap();
    let (from_csv, _) = read(text);
    let drop_source = |b: &RecordBatch| {
        b.project(&(0..b.num_columns() - 2).collect::<Vec<_>>())
            .unwrap()
    };
    assert_eq!(drop_source(&from_gz[0]), drop_source(&from_csv[0]));

    // The same row as a Parquet export with native types.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.parquet");
    let native = RecordBatch::try_from_iter(vec![
        (
            "BilledCost",
            std::sync::Arc::new(Float64Array::from(vec![2.5])) as _,
        ),
        (
            "ChargePeriodStart",
            std::sync::Arc::new(
                TimestampMillisecondArray::from(vec![1_725_148_800_000]).with_timezone("UTC"),
            ) as _,
        ),
        (
            "ServiceName",
            std::sync::Arc::new(arrow::array::StringArray::from(vec!["Compute"])) as _,
        ),
        (
            "Tags",
            std::sync::Arc::new(arrow::array::StringArray::from(vec![r#"{"env":"prod"}"#])) as _,
        ),
    ])
    .unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        native.schema(),
        None,
    )
    .unwrap();
    w.write(&native).unwrap();
    w.close().unwrap();
    let mut from_parquet = Vec::new();
    let read = export::read_export(&path, &mut |b| {
        from_parquet.push(b);
        Ok(())
    })
    .unwrap();
    assert_eq!(read.rows, 1);
    assert_eq!(drop_source(&from_parquet[0]), drop_source(&from_csv[0]));
}

fn gzipped(text: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text).unwrap();
    gz.finish().unwrap()
}

#[test]
fn a_row_past_the_limit_is_refused_without_holding_it() {
    // 17 MiB of one field, gzipped to a few KiB: read on, it would be held
    // whole by the CSV reader.
    let mut text = b"BilledCost,ChargePeriodStart\n1,".to_vec();
    text.resize(text.len() + (17 << 20), b'a');
    let e = read_csv_bytes(&gzipped(&text), "bomb.csv.gz", &mut |_| Ok(()))
        .err()
        .unwrap();
    assert!(
        e.contains("line 2: cannot read on:") && e.contains("a row runs past 16 MiB"),
        "{e}"
    );
}

#[test]
fn a_corrupt_gzip_stream_stops_the_file_with_the_reason() {
    let mut gz =
        gzipped(b"BilledCost,ChargePeriodStart\n1,2024-09-01T00:00:00Z\n2,2024-09-01T00:00:00Z\n");
    let n = gz.len();
    gz.truncate(n - 12);
    gz.extend_from_slice(b"garbage!garbage!");
    let e = read_csv_bytes(&gz, "torn.csv.gz", &mut |_| Ok(()))
        .err()
        .unwrap();
    // Refused with the decoder's reason, once: a reader that failed is not
    // asked again and again.
    assert!(e.contains("corrupt deflate stream"), "{e}");
}
