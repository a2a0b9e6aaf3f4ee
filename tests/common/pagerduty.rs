//! A PagerDuty Events API v2 receiver on 127.0.0.1 that checks every field
//! against PagerDuty's documented limits and answers as PagerDuty does
//! (202 / 400 with `errors`), or with 429 (Retry-After) and 500 on demand.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// What the receiver saw.
#[derive(Default)]
pub struct Seen {
    /// Valid events answered 202, in order.
    pub accepted: Vec<Value>,
    /// (status, body, errors) of every other answer.
    pub refused: Vec<(u16, Value, Vec<String>)>,
    /// Every raw request body.
    pub raw: Vec<String>,
    /// Webhook posts to any path under /hook: (path, body).
    pub hooks: Vec<(String, Value)>,
}

pub struct Receiver {
    pub url: String,
    pub seen: Arc<Mutex<Seen>>,
    /// Statuses to answer to the next valid events (429, 500, 400…, or
    /// `HANG`).
    pub plan: Arc<Mutex<VecDeque<u16>>>,
    /// Answer this status to every valid event while set (PagerDuty down).
    pub down: Arc<Mutex<Option<u16>>>,
}

/// A plan entry: read the event, answer nothing, close after 15 s.
pub const HANG: u16 = 0;

/// A well-formed (32-character) routing key the tests page with.
pub const KEY: &str = "R0UTINGKEY0123456789abcdefABCDEF";

/// Flags that page this receiver (at `url`) with the key in `PD_KEY`.
pub fn paging_args(url: &str) -> [&str; 4] {
    [
        "--pagerduty-routing-key-env",
        "PD_KEY",
        "--pagerduty-url",
        url,
    ]
}

/// `driftline run` flags: this config, paging this receiver with `PD_KEY`.
pub fn run_args<'a>(config: &'a str, url: &'a str) -> [&'a str; 6] {
    let [a, b, c, d] = paging_args(url);
    ["--config", config, a, b, c, d]
}

const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];

/// Checks an event against the Events API v2 documentation.
pub fn validate(body: &[u8]) -> Result<Value, Vec<String>> {
    let mut errors = Vec::new();
    if body.len() > 512 * 1024 {
        errors.push("event larger than 512 KB".into());
    }
    let v: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return Err(vec!["body is not a JSON object".into()]),
    };
    let s = |p: &str| v.pointer(p).and_then(Value::as_str);
    match s("/routing_key") {
        Some(k) if k.chars().count() == 32 => {}
        _ => errors.push("Length of 'routing_key' is incorrect (should be 32 characters)".into()),
    }
    let action = s("/event_action").unwrap_or_default();
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        errors.push(format!("'event_action' is invalid: {action:?}"));
    }
    match v.get("dedup_key") {
        None if action != "trigger" => {
            errors.push("'dedup_key' is required for acknowledge/resolve".into())
        }
        None => {}
        Some(Value::String(d)) if !d.is_empty() && d.chars().count() <= 255 => {}
        Some(_) => errors.push("'dedup_key' must be a string of 1..=255 characters".into()),
    }
    if action == "trigger" {
        match s("/payload/summary") {
            Some(t) if !t.is_empty() && t.chars().count() <= 1024 => {}
            _ => errors.push("'payload.summary' is missing or longer than 1024 characters".into()),
        }
        if s("/payload/source").is_none_or(str::is_empty) {
            errors.push("'payload.source' is missing".into());
        }
        if !s("/payload/severity").is_some_and(|x| SEVERITIES.contains(&x)) {
            errors.push("'payload.severity' must be critical, error, warning or info".into());
        }
        if let Some(t) = v.pointer("/payload/timestamp") {
            let ok = t
                .as_str()
                .and_then(|t| {
                    driftline_pipeline::parse_iso8601_ms(t).or_else(|| {
                        // ISO 8601 with a +0000 offset, as in PagerDuty's example.
                        let fixed = format!(
                            "{}:{}",
                            &t[..t.len().saturating_sub(2)],
                            &t[t.len().saturating_sub(2)..]
                        );
                        driftline_pipeline::parse_iso8601_ms(&fixed)
                    })
                })
                .is_some();
            if !ok {
                errors.push(format!("'payload.timestamp' is not ISO 8601: {t}"));
            }
        }
        for f in ["component", "group", "class"] {
            if let Some(x) = v["payload"].get(f)
                && !x.is_string()
            {
                errors.push(format!("'payload.{f}' must be a string"));
            }
        }
        if let Some(d) = v["payload"].get("custom_details")
            && !d.is_object()
        {
            errors.push("'payload.custom_details' must be an object".into());
        }
    }
    if let Some(links) = v.get("links") {
        match links.as_array() {
            Some(a) if a.iter().all(|l| l["href"].is_string()) => {}
            _ => errors.push("'links' must be objects with an href".into()),
        }
    }
    if let Some(images) = v.get("images") {
        match images.as_array() {
            Some(a)
                if a.iter()
                    .all(|i| i["src"].as_str().is_some_and(|s| s.starts_with("https://"))) => {}
            _ => errors.push("'images' must be objects with an https src".into()),
        }
    }
    for f in ["client", "client_url"] {
        if let Some(x) = v.get(f)
            && !x.is_string()
        {
            errors.push(format!("'{f}' must be a string"));
        }
    }
    if errors.is_empty() {
        Ok(v)
    } else {
        Err(errors)
    }
}

fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let request_line = line.trim().to_string();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((request_line, body))
}

fn respond(stream: &mut TcpStream, status: u16, extra: &str, body: &str) {
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        429 => "Too Many Requests",
        _ => "Internal Server Error",
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: keep-alive\r\n\r\n{body}",
        body.len()
    );
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v2/enqueue", listener.local_addr().unwrap());
        let r = Receiver {
            url,
            seen: Arc::default(),
            plan: Arc::default(),
            down: Arc::default(),
        };
        let (seen, plan, down) = (r.seen.clone(), r.plan.clone(), r.down.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (seen, plan, down) = (seen.clone(), plan.clone(), down.clone());
                std::thread::spawn(move || {
                    while let Some((line, body)) = read_request(&mut stream) {
                        let mut s = seen.lock().unwrap();
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                        if path.starts_with("/hook") {
                            s.hooks
                                .push((path, serde_json::from_slice(&body).unwrap_or(Value::Null)));
                            drop(s);
                            respond(&mut stream, 200, "", "{}");
                            continue;
                        }
                        s.raw.push(String::from_utf8_lossy(&body).into_owned());
                        let v = match validate(&body) {
                            Ok(v) => v,
                            Err(errors) => {
                                let b = serde_json::json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors});
                                s.refused.push((
                                    400,
                                    serde_json::from_slice(&body).unwrap_or(Value::Null),
                                    errors,
                                ));
                                drop(s);
                                respond(&mut stream, 400, "", &b.to_string());
                                continue;
                            }
                        };
                        let forced = plan.lock().unwrap().pop_front().or(*down.lock().unwrap());
                        match forced {
                            Some(429) => {
                                s.refused.push((429, v, vec![]));
                                drop(s);
                                respond(
                                    &mut stream,
                                    429,
                                    "Retry-After: 1\r\n",
                                    "{\"status\":\"throttle event\",\"message\":\"Requests for this service are arriving too quickly. Please retry later.\"}",
                                );
                            }
                            Some(HANG) => {
                                // Took the event and never answers: the
                                // sender's timeout must end it.
                                s.refused.push((HANG, v, vec![]));
                                drop(s);
                                std::thread::sleep(std::time::Duration::from_secs(15));
                                break;
                            }
                            Some(400) => {
                                let errors = vec!["forced by the test".to_string()];
                                s.refused.push((400, v, errors.clone()));
                                drop(s);
                                let b = serde_json::json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors});
                                respond(&mut stream, 400, "", &b.to_string());
                            }
                            Some(code) => {
                                s.refused.push((code, v, vec![]));
                                drop(s);
                                respond(&mut stream, code, "", "{\"status\":\"error\"}");
                            }
                            None => {
                                let dk = v["dedup_key"].as_str().unwrap_or("generated").to_string();
                                s.accepted.push(v);
                                drop(s);
                                let b = serde_json::json!({"status": "success", "message": "Event processed", "dedup_key": dk});
                                respond(&mut stream, 202, "", &b.to_string());
                            }
                        }
                    }
                });
            }
        });
        r
    }

    /// (dedup_key, event_action) of accepted events, in order.
    pub fn actions(&self) -> Vec<(String, String)> {
        self.seen
            .lock()
            .unwrap()
            .accepted
            .iter()
            .map(|v| {
                (
                    v["dedup_key"].as_str().unwrap_or_default().to_string(),
                    v["event_action"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    pub fn count(&self, action: &str) -> usize {
        self.actions().iter().filter(|(_, a)| a == action).count()
    }
}

#[test]
fn the_receiver_refuses_what_pagerduty_refuses() {
    let ok = serde_json::json!({"routing_key": "a".repeat(32), "event_action": "trigger", "dedup_key": "x",
        "payload": {"summary": "s", "source": "h", "severity": "error", "timestamp": "2015-07-17T08:42:58.315+0000"}});
    assert!(validate(ok.to_string().as_bytes()).is_ok());
    for (path, bad) in [
        ("/routing_key", Value::String("short".into())),
        ("/event_action", Value::String("open".into())),
        ("/dedup_key", Value::String("d".repeat(256))),
        ("/payload/summary", Value::String("s".repeat(1025))),
        ("/payload/severity", Value::String("high".into())),
        ("/payload/timestamp", Value::String("yesterday".into())),
    ] {
        let mut v = ok.clone();
        *v.pointer_mut(path).unwrap() = bad;
        assert!(validate(v.to_string().as_bytes()).is_err(), "{path}");
    }
    let resolve = serde_json::json!({"routing_key": "a".repeat(32), "event_action": "resolve"});
    assert!(
        validate(resolve.to_string().as_bytes()).is_err(),
        "resolve needs dedup_key"
    );
}
