//! The three hook kinds.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{HookRun, RemediationHook};
use crate::config::{HookConfig, HookKind};
use crate::engine::AlertContent;

const OUTPUT_MAX: usize = 64 * 1024;

/// Fills `{fingerprint}`, `{resource_key}`, `{resource_id}`, `{address}`
/// and any `{label}` from the alert.
fn fill(template: &str, a: &AlertContent) -> String {
    let mut s = template.replace("{fingerprint}", &a.fingerprint);
    for (k, v) in a.labels.iter() {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:@[]\"".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs argv with a timeout; output is stdout then stderr, cut at 64 KiB.
fn execute(
    argv: &[String],
    dir: Option<&str>,
    timeout: Duration,
    env: &[(&str, String)],
) -> HookRun {
    let command = shell_words(argv);
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return HookRun {
                command,
                output: format!("cannot start {}: {e}", argv[0]),
                exit_code: Some(127),
            };
        }
    };
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut buf);
        }
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut buf);
        }
        buf
    });
    let started = Instant::now();
    let code = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code().unwrap_or(-1),
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break -1;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break -1,
        }
    };
    let buf = reader.join().unwrap_or_default();
    let mut output = String::from_utf8_lossy(&buf[..buf.len().min(OUTPUT_MAX)]).into_owned();
    if code == -1 && started.elapsed() > timeout {
        output.push_str(&format!("\n(killed after {timeout:?})"));
    }
    HookRun {
        command,
        output,
        exit_code: Some(code),
    }
}

/// Runs a configured command. Its dry run only shows the command: an
/// arbitrary program cannot be trusted to honour a dry-run flag.
pub struct CommandHook {
    argv: Vec<String>,
    timeout: Duration,
}

impl RemediationHook for CommandHook {
    fn dry_run(&self, a: &AlertContent) -> HookRun {
        let argv: Vec<String> = self.argv.iter().map(|t| fill(t, a)).collect();
        HookRun {
            command: shell_words(&argv),
            output: format!("dry run: would run {}", shell_words(&argv)),
            exit_code: None,
        }
    }

    fn run(&self, a: &AlertContent) -> HookRun {
        let argv: Vec<String> = self.argv.iter().map(|t| fill(t, a)).collect();
        let alert_json = serde_json::to_string(a).unwrap_or_default();
        execute(
            &argv,
            None,
            self.timeout,
            &[("DRIFTLINE_ALERT", alert_json)],
        )
    }
}

/// `terraform plan -target=ADDR` as the dry run, `terraform apply
/// -target=ADDR -auto-approve` as the run, in the configured directory.
pub struct TerraformHook {
    terraform: String,
    workdir: String,
    timeout: Duration,
}

impl TerraformHook {
    fn argv(&self, a: &AlertContent, apply: bool) -> Result<Vec<String>, HookRun> {
        let Some(addr) = a.labels.get("address") else {
            return Err(HookRun {
                command: String::new(),
                output: "the alert names no Terraform address (an unmanaged resource needs an import, not an apply)".into(),
                exit_code: Some(2),
            });
        };
        let mut v = vec![
            self.terraform.clone(),
            if apply { "apply" } else { "plan" }.to_string(),
            format!("-target={addr}"),
            "-input=false".into(),
            "-no-color".into(),
        ];
        if apply {
            v.push("-auto-approve".into());
        }
        Ok(v)
    }
}

impl RemediationHook for TerraformHook {
    fn dry_run(&self, a: &AlertContent) -> HookRun {
        match self.argv(a, false) {
            Ok(argv) => execute(&argv, Some(&self.workdir), self.timeout, &[]),
            Err(r) => r,
        }
    }

    fn run(&self, a: &AlertContent) -> HookRun {
        match self.argv(a, true) {
            Ok(argv) => execute(&argv, Some(&self.workdir), self.timeout, &[]),
            Err(r) => r,
        }
    }
}

/// POSTs the alert and the action (`dry_run` true, then false).
pub struct WebhookHook {
    url: String,
    http: reqwest::blocking::Client,
}

impl WebhookHook {
    fn body(a: &AlertContent, dry_run: bool) -> serde_json::Value {
        json!({"dry_run": dry_run, "alert": a})
    }
}

impl RemediationHook for WebhookHook {
    fn dry_run(&self, a: &AlertContent) -> HookRun {
        HookRun {
            command: format!("POST {}", self.url),
            output: format!("dry run: would POST {}", Self::body(a, false)),
            exit_code: None,
        }
    }

    fn run(&self, a: &AlertContent) -> HookRun {
        let command = format!("POST {}", self.url);
        match self.http.post(&self.url).json(&Self::body(a, false)).send() {
            Ok(r) => {
                let code = r.status().as_u16() as i32;
                let text = r.text().unwrap_or_default();
                HookRun {
                    command,
                    output: text.chars().take(OUTPUT_MAX).collect(),
                    exit_code: Some(code),
                }
            }
            Err(e) => HookRun {
                command,
                output: e.to_string(),
                exit_code: None,
            },
        }
    }
}

pub fn hook_for(cfg: &HookConfig) -> Box<dyn RemediationHook> {
    match cfg.kind {
        HookKind::Command => Box::new(CommandHook {
            argv: cfg.command.clone(),
            timeout: cfg.timeout,
        }),
        HookKind::Terraform => Box::new(TerraformHook {
            terraform: cfg.terraform.clone(),
            workdir: cfg.workdir.clone().unwrap_or_else(|| ".".into()),
            timeout: cfg.timeout,
        }),
        HookKind::Webhook => Box::new(WebhookHook {
            url: cfg.url.clone().unwrap_or_default(),
            http: crate::notify::http_client(),
        }),
    }
}
