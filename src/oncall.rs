//! On-call commands that talk to a running driftline's API, as `amtool`
//! does with Alertmanager: `driftline silence add|list|expire` and
//! `driftline remediate`. The API token (when the service has one) comes
//! from the same environment variable.

use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

#[derive(Args)]
pub struct ApiArgs {
    /// The driftline service (its `listen` address).
    #[arg(long, default_value = "http://127.0.0.1:9464")]
    pub url: String,
    /// Environment variable holding the API token.
    #[arg(long, default_value = "DRIFTLINE_API_TOKEN", value_name = "VAR")]
    pub token_env: String,
}

#[derive(Subcommand)]
pub enum SilenceCommand {
    /// Silence alerts matching label matchers, e.g. `team="payments"` `class=~"changed|missing"`.
    Add {
        /// Label matchers (all must match).
        #[arg(required = true)]
        matchers: Vec<String>,
        /// How long, e.g. 2h, 30m, 1d.
        #[arg(long, default_value = "1h")]
        duration: String,
        /// Who silences [default: $USER].
        #[arg(long)]
        author: Option<String>,
        /// Why (shown next to the silence).
        #[arg(long)]
        comment: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List silences.
    List {
        /// Also show expired ones.
        #[arg(long)]
        expired: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// End a silence now.
    Expire {
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Args)]
pub struct RemediateArgs {
    /// Alert fingerprint (or a unique prefix); lists its proposals.
    pub alert: String,
    /// Approve and run the pending proposal(s) for this alert.
    #[arg(long)]
    pub approve: bool,
    /// Only this hook's proposal.
    #[arg(long)]
    pub hook: Option<String>,
    /// Who approves [default: $USER].
    #[arg(long)]
    pub author: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
}

fn call(
    api: &ApiArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let token = std::env::var(&api.token_env).ok();
    Ok(driftline_alerts::api::client::Client::new(&api.url, token).call(method, path, body)?)
}

fn user(author: Option<String>) -> String {
    author
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}

pub fn silence(cmd: SilenceCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SilenceCommand::Add {
            matchers,
            duration,
            author,
            comment,
            api,
        } => {
            // Validate here too, so a typo fails before any request.
            for m in &matchers {
                driftline_alerts::labels::parse_matchers(m).map_err(|e| anyhow::anyhow!(e))?;
            }
            let v = call(
                &api,
                reqwest::Method::POST,
                "/api/silences",
                Some(json!({
                    "matchers": matchers,
                    "duration": duration,
                    "createdBy": user(author),
                    "comment": comment,
                })),
            )?;
            println!("{}", v["silenceID"].as_str().unwrap_or_default());
        }
        SilenceCommand::List { expired, api } => {
            let v = call(&api, reqwest::Method::GET, "/api/silences", None)?;
            println!(
                "{:<32}  {:<8}  {:<24}  {:<12}  MATCHERS / COMMENT",
                "ID", "STATE", "ENDS", "BY"
            );
            for s in v.as_array().into_iter().flatten() {
                let state = s["status"]["state"].as_str().unwrap_or("");
                if state == "expired" && !expired {
                    continue;
                }
                let matchers: Vec<&str> = s["matchers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                println!(
                    "{:<32}  {:<8}  {:<24}  {:<12}  {} — {}",
                    s["id"].as_str().unwrap_or(""),
                    state,
                    s["endsAt"].as_str().unwrap_or(""),
                    s["createdBy"].as_str().unwrap_or(""),
                    matchers.join(","),
                    s["comment"].as_str().unwrap_or("")
                );
            }
        }
        SilenceCommand::Expire { id, api } => {
            call(
                &api,
                reqwest::Method::DELETE,
                &format!("/api/silences/{id}"),
                None,
            )?;
            println!("expired {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn remediate(args: RemediateArgs) -> anyhow::Result<ExitCode> {
    let all = call(&args.api, reqwest::Method::GET, "/api/remediations", None)?;
    let mine: Vec<&Value> = all
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p["fingerprint"]
                .as_str()
                .is_some_and(|f| f.starts_with(&args.alert))
                && args.hook.as_deref().is_none_or(|h| p["hook"] == h)
        })
        .collect();
    if mine.is_empty() {
        bail!("no remediation proposal for alert {}", args.alert);
    }
    let mut failed = false;
    for p in mine {
        let id = p["id"].as_str().unwrap_or_default();
        println!(
            "proposal {id}  hook {}  alert {}  status {}",
            p["hook"].as_str().unwrap_or(""),
            p["fingerprint"].as_str().unwrap_or(""),
            p["status"].as_str().unwrap_or("")
        );
        println!("  plan: {}", p["plan"]["command"].as_str().unwrap_or(""));
        for line in p["plan"]["output"].as_str().unwrap_or("").lines().take(40) {
            println!("  | {line}");
        }
        if args.approve && p["status"] == "proposed" {
            let r = call(
                &args.api,
                reqwest::Method::POST,
                &format!("/api/remediations/{id}/approve"),
                Some(json!({"approver": user(args.author.clone())})),
            )?;
            let code = r["result"]["exit_code"].as_i64();
            println!(
                "  ran: {} → {} (exit {})",
                r["result"]["command"].as_str().unwrap_or(""),
                r["status"].as_str().unwrap_or(""),
                code.map(|c| c.to_string()).unwrap_or_else(|| "-".into())
            );
            for line in r["result"]["output"]
                .as_str()
                .unwrap_or("")
                .lines()
                .take(40)
            {
                println!("  | {line}");
            }
            failed |= r["status"] != "succeeded";
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
