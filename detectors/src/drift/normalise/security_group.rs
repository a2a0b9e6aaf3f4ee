//! The security group normaliser: a group's rules, as Terraform writes
//! them (`ingress`, `egress`) or AWS Config does (`ipPermissions`,
//! `ipPermissionsEgress`), as one set of atoms, one per rule and source.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde_json::Value;

use super::{Ctx, canonical, cidr, number_text, numeric_text};

fn protocol(p: &str) -> Cow<'_, str> {
    let known = |p: &str| match p {
        "-1" | "all" => Some("-1"),
        "6" => Some("tcp"),
        "17" => Some("udp"),
        "1" => Some("icmp"),
        "58" => Some("icmpv6"),
        _ => None,
    };
    if p.bytes().any(|b| b.is_ascii_uppercase()) {
        let lower = p.to_ascii_lowercase();
        return Cow::Owned(known(&lower).map(str::to_string).unwrap_or(lower));
    }
    known(p).map_or(Cow::Borrowed(p), Cow::Borrowed)
}

/// The text `canonical` makes of a scalar, read in place where it is the
/// value's own; none for what it makes no text of (null, "", a list).
fn text(v: Option<&Value>) -> Option<Cow<'_, str>> {
    match v? {
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Number(n) => Some(Cow::Owned(number_text(n))),
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(numeric_text(s).map_or(Cow::Borrowed(s.as_str()), Cow::Owned)),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// The texts of a list's members, or of the `field` of each object member.
fn strings<'v>(
    v: Option<&'v Value>,
    field: Option<&'v str>,
) -> impl Iterator<Item = Cow<'v, str>> + 'v {
    let members = match v {
        Some(Value::Array(a)) => a.as_slice(),
        _ => &[],
    };
    members.iter().filter_map(move |x| match (field, x) {
        (Some(f), Value::Object(_)) => text(x.get(f)),
        (_, Value::Object(_)) => None,
        _ => text(Some(x)),
    })
}

/// One atom per (rule, source): `tcp:22-22:cidr:10.0.0.0/8`. Each atom is
/// written into one buffer: a group's rules were a dozen small strings
/// each before.
pub(super) fn ip_permissions(v: &Value, ctx: &Ctx) -> Value {
    let Value::Array(rules) = v else {
        return canonical(v);
    };
    let mut atoms = BTreeSet::new();
    let mut atom = String::with_capacity(64);
    for r in rules {
        let tf = r.get("from_port").is_some() || r.get("protocol").is_some();
        let (proto, from, to) = if tf {
            (r.get("protocol"), r.get("from_port"), r.get("to_port"))
        } else {
            (r.get("ipProtocol"), r.get("fromPort"), r.get("toPort"))
        };
        let proto = text(proto).unwrap_or(Cow::Borrowed("-1"));
        let proto = protocol(&proto);
        atom.clear();
        atom.push_str(&proto);
        if proto == "-1" {
            atom.push_str(":all:");
        } else {
            atom.push(':');
            atom.push_str(text(from).as_deref().unwrap_or("*"));
            atom.push('-');
            atom.push_str(text(to).as_deref().unwrap_or("*"));
            atom.push(':');
        }
        let head = atom.len();
        let mut add = |kind: &str, source: &str| {
            atom.truncate(head);
            atom.push_str(kind);
            atom.push_str(source);
            if !atoms.contains(atom.as_str()) {
                atoms.insert(atom.clone());
            }
        };
        if tf {
            for c in strings(r.get("cidr_blocks"), None) {
                add("cidr:", &cidr(&c));
            }
            for c in strings(r.get("ipv6_cidr_blocks"), None) {
                add("cidr:", &cidr(&c));
            }
            for p in strings(r.get("prefix_list_ids"), None) {
                add("pl:", &p);
            }
            for g in strings(r.get("security_groups"), None) {
                add("sg:", g.rsplit('/').next().unwrap_or(&g));
            }
            if text(r.get("self")).as_deref() == Some("true") {
                add("sg:", ctx.resource_id);
            }
        } else {
            for (list, field) in [
                ("ipRanges", "cidrIp"),
                ("ipv4Ranges", "cidrIp"),
                ("ipv6Ranges", "cidrIpv6"),
            ] {
                for c in strings(r.get(list), Some(field)) {
                    add("cidr:", &cidr(&c));
                }
            }
            for p in strings(r.get("prefixListIds"), Some("prefixListId")) {
                add("pl:", &p);
            }
            for g in strings(r.get("userIdGroupPairs"), Some("groupId")) {
                add("sg:", &g);
            }
        }
    }
    if atoms.is_empty() {
        Value::Null
    } else {
        Value::Array(atoms.into_iter().map(Value::String).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Ctx<'static> {
        Ctx {
            resource_id: "sg-self",
        }
    }

    #[test]
    fn security_group_rules_match_across_sides() {
        let tf = json!([
            {"from_port": 22, "to_port": 22, "protocol": "tcp", "cidr_blocks": ["10.0.0.0/8"], "self": false, "security_groups": []},
            {"from_port": 0, "to_port": 0, "protocol": "-1", "cidr_blocks": [], "self": true, "security_groups": ["123456789012/sg-2"]}
        ]);
        let config = json!([
            {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": ["10.0.0.0/8"], "ipv4Ranges": [{"cidrIp": "10.0.0.0/8"}], "userIdGroupPairs": []},
            {"ipProtocol": "-1", "userIdGroupPairs": [{"groupId": "sg-self"}, {"groupId": "sg-2", "userId": "123456789012"}]}
        ]);
        assert_eq!(ip_permissions(&tf, &ctx()), ip_permissions(&config, &ctx()));
        let opened = json!([{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipv4Ranges": [{"cidrIp": "0.0.0.0/0"}]}]);
        assert_ne!(ip_permissions(&tf, &ctx()), ip_permissions(&opened, &ctx()));
        assert_eq!(
            ip_permissions(&tf, &ctx()),
            json!([
                "-1:all:sg:sg-2",
                "-1:all:sg:sg-self",
                "tcp:22-22:cidr:10.0.0.0/8"
            ])
        );
        // Protocols by number or in capitals, open ports, IPv6 and prefix lists.
        let odd = json!([
            {"ipProtocol": "6", "fromPort": 443, "ipv6Ranges": [{"cidrIpv6": "2001:DB8::1/32"}]},
            {"ipProtocol": "UDP", "fromPort": "53", "toPort": 53.0, "prefixListIds": [{"prefixListId": "pl-1"}]},
            {"ipProtocol": "icmp", "fromPort": -1, "toPort": -1, "ipRanges": [""]}
        ]);
        assert_eq!(
            ip_permissions(&odd, &ctx()),
            json!(["tcp:443-*:cidr:2001:db8::/32", "udp:53-53:pl:pl-1"])
        );
    }
}
