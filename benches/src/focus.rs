//! FOCUS 1.0 cost exports, generated: the demo estate's month of spend
//! (`examples/estate/cost/`, one row per billable resource per day) and
//! exports of any size for benchmarks. Costs come from a fixed daily rate
//! per resource type, so every figure a test asserts can be recomputed
//! from the file.

use std::io::Write;

use serde_json::Value;

/// The columns written, FOCUS 1.0's names in its order of sections.
pub const HEADER: &[&str] = &[
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "ContractedUnitPrice",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ProviderName",
    "PublisherName",
    "InvoiceIssuerName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
];

/// What a resource type costs a day (USD), its FOCUS service and category.
fn rate(resource_type: &str) -> Option<(f64, &'static str, &'static str)> {
    Some(match resource_type {
        "AWS::EC2::Instance" => (2.30, "Amazon Elastic Compute Cloud", "Compute"),
        "AWS::EC2::Volume" => (0.80, "Amazon Elastic Compute Cloud", "Storage"),
        "AWS::EC2::NatGateway" => (1.08, "Amazon Virtual Private Cloud", "Networking"),
        "AWS::EC2::EIP" => (0.12, "Amazon Virtual Private Cloud", "Networking"),
        "AWS::ElasticLoadBalancingV2::LoadBalancer" => {
            (0.54, "Elastic Load Balancing", "Networking")
        }
        "AWS::RDS::DBInstance" => (8.16, "Amazon Relational Database Service", "Databases"),
        "AWS::Lambda::Function" => (0.31, "AWS Lambda", "Compute"),
        "AWS::SQS::Queue" => (0.05, "Amazon Simple Queue Service", "Integration"),
        "AWS::SNS::Topic" => (0.01, "Amazon Simple Notification Service", "Integration"),
        "AWS::DynamoDB::Table" => (0.93, "Amazon DynamoDB", "Databases"),
        "AWS::S3::Bucket" => (0.25, "Amazon Simple Storage Service", "Storage"),
        _ => return None,
    })
}

/// One billable resource.
pub struct Billable {
    pub arn: String,
    pub name: String,
    pub resource_type: String,
    pub region: String,
    pub tags: Vec<(String, String)>,
    /// A daily-rate multiplier, so resources of one type differ.
    pub scale: f64,
}

/// The billable resources of an AWS Config snapshot.
pub fn billables(snapshot: &Value) -> Vec<Billable> {
    let items = snapshot["configurationItems"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    items
        .iter()
        .filter(|i| rate(i["resourceType"].as_str().unwrap_or("")).is_some())
        .enumerate()
        .map(|(n, i)| Billable {
            // The ARN where the item has one, as AWS writes ResourceId.
            arn: ["arn", "ARN", "resourceId"]
                .iter()
                .find_map(|k| i[*k].as_str().filter(|s| !s.is_empty()))
                .unwrap_or_default()
                .to_string(),
            name: i["resourceName"]
                .as_str()
                .or(i["resourceId"].as_str())
                .unwrap_or_default()
                .to_string(),
            resource_type: i["resourceType"].as_str().unwrap_or_default().to_string(),
            region: i["awsRegion"].as_str().unwrap_or("eu-west-1").to_string(),
            tags: i["tags"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| *k != "Name")
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            // 1.0, 1.5, 2.0, 1.0, … : fixed, so figures are reproducible.
            scale: 1.0 + (n % 3) as f64 * 0.5,
        })
        .collect()
}

/// `n` billable resources of every rated type, for exports of any size:
/// most carry team, env and service tags, every tenth none at all, and
/// every seventh lacks `team`.
pub fn synthetic(n: usize) -> Vec<Billable> {
    const TYPES: [&str; 6] = [
        "AWS::EC2::Instance",
        "AWS::EC2::Volume",
        "AWS::RDS::DBInstance",
        "AWS::S3::Bucket",
        "AWS::Lambda::Function",
        "AWS::DynamoDB::Table",
    ];
    (0..n)
        .map(|i| {
            let resource_type = TYPES[i % TYPES.len()].to_string();
            let id = format!("res-{i:08}");
            let mut tags = Vec::new();
            if i % 10 != 0 {
                if i % 7 != 0 {
                    tags.push((
                        "team".into(),
                        ["payments", "search", "platform"][i % 3].into(),
                    ));
                }
                tags.push(("env".into(), ["prod", "staging"][i % 2].into()));
                tags.push(("service".into(), format!("svc-{}", i % 50)));
            }
            Billable {
                arn: format!(
                    "arn:aws:ec2:eu-west-1:123456789012:{}/{id}",
                    resource_type.to_ascii_lowercase()
                ),
                name: id,
                resource_type,
                region: "eu-west-1".into(),
                tags,
                scale: 1.0 + (i % 3) as f64 * 0.5,
            }
        })
        .collect()
}

/// Cents, so sums are exact in tests.
fn money(v: f64) -> String {
    format!("{:.2}", (v * 100.0).round() / 100.0)
}

fn cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row: the billing account, currency and period every row shares,
/// the charge period, then `rest` (ChargeCategory onwards).
fn write_row(
    out: &mut impl Write,
    account: &str,
    start: &str,
    end: &str,
    rest: &[String],
) -> std::io::Result<()> {
    let billing = [
        account,
        "Acme Corp",
        "USD",
        "2024-09-01T00:00:00Z",
        "2024-10-01T00:00:00Z",
        start,
        end,
    ];
    let line: Vec<String> = billing
        .into_iter()
        .chain(rest.iter().map(String::as_str))
        .map(cell)
        .collect();
    writeln!(out, "{}", line.join(","))
}

/// One month (September 2024) of daily usage rows for `resources`, plus
/// one untagged tax row per day, as a FOCUS 1.0 CSV. Returns the rows.
pub fn write_month(
    out: &mut impl Write,
    account: &str,
    resources: &[Billable],
) -> std::io::Result<usize> {
    writeln!(out, "{}", HEADER.join(","))?;
    let mut rows = 0;
    for day in 1..=30u32 {
        let start = format!("2024-09-{day:02}T00:00:00Z");
        let end = if day == 30 {
            "2024-10-01T00:00:00Z".to_string()
        } else {
            format!("2024-09-{:02}T00:00:00Z", day + 1)
        };
        let mut tax = 0.0;
        for r in resources {
            let Some((daily, service, category)) = rate(&r.resource_type) else {
                continue;
            };
            let cost = daily * r.scale;
            tax += (cost * 100.0).round() / 100.0 * 0.1;
            let tags = if r.tags.is_empty() {
                "{}".to_string()
            } else {
                let m: serde_json::Map<String, Value> = r
                    .tags
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                Value::Object(m).to_string()
            };
            let fields = [
                "Usage".into(),
                String::new(),
                format!("{} usage", r.resource_type),
                "Usage-Based".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                money(cost),
                money(cost),
                money(cost * 1.1),
                money(cost),
                format!("{:.4}", cost / 24.0),
                format!("{:.4}", cost * 1.1 / 24.0),
                "Standard".into(),
                "24".into(),
                "Hours".into(),
                "24".into(),
                "Hours".into(),
                "AWS".into(),
                "AWS".into(),
                "AWS".into(),
                r.region.clone(),
                r.region.clone(),
                r.arn.clone(),
                r.name.clone(),
                r.resource_type.clone(),
                category.into(),
                service.into(),
                format!("SKU-{}", r.resource_type.replace("::", "-")),
                format!("PRICE-{}-{}", r.resource_type.replace("::", "-"), r.region),
                account.to_string(),
                "prod".into(),
                tags,
            ];
            write_row(out, account, &start, &end, &fields)?;
            rows += 1;
        }
        let fields = [
            "Tax".into(),
            String::new(),
            "VAT".into(),
            "Usage-Based".into(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            money(tax),
            money(tax),
            money(tax),
            money(tax),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            "AWS".into(),
            "AWS".into(),
            "AWS".into(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            "Other".into(),
            "Tax".into(),
            String::new(),
            String::new(),
            account.to_string(),
            "prod".into(),
            String::new(),
        ];
        write_row(out, account, &start, &end, &fields)?;
        rows += 1;
    }
    Ok(rows)
}
