//! Routing (Alertmanager's tree: matchers, `continue`, inherited timings),
//! silences and inhibition: which groups an alert joins, and whether it is
//! muted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{AlertEngine, DEFAULT_GROUP_INTERVAL, DEFAULT_GROUP_WAIT, DEFAULT_REPEAT_INTERVAL, ms};
use crate::config::{InhibitRule, RouteConfig};
use crate::labels::{self, LabelLookup, Matcher, all_match};
use crate::silence::Silence;

pub(super) struct Route {
    pub(super) key: String,
    /// Shared with every notification this route sends.
    pub(super) receiver: Arc<str>,
    /// `None`: group by every label (`...`).
    pub(super) group_by: Option<Vec<String>>,
    pub(super) matchers: Vec<Matcher>,
    pub(super) continue_: bool,
    pub(super) group_wait: i64,
    pub(super) group_interval: i64,
    pub(super) repeat_interval: i64,
    pub(super) children: Vec<usize>,
}

pub(super) struct Inhibitor {
    pub(super) rule: InhibitRule,
    /// equal-label values → firing source alerts (and whether each also
    /// matches the target side, which Alertmanager does not let inhibit itself).
    pub(super) sources: HashMap<Vec<String>, HashMap<Arc<str>, bool>>,
}

impl Inhibitor {
    pub(super) fn equal_key(&self, labels: &(impl LabelLookup + ?Sized)) -> Vec<String> {
        self.rule
            .equal
            .iter()
            .map(|n| labels.label(n).unwrap_or_default().to_string())
            .collect()
    }
}

impl AlertEngine {
    pub(super) fn matching_routes(&self, labels: &(impl LabelLookup + ?Sized)) -> Vec<usize> {
        fn walk(
            routes: &[Route],
            i: usize,
            labels: &(impl LabelLookup + ?Sized),
            out: &mut Vec<usize>,
        ) -> bool {
            let r = &routes[i];
            if !all_match(&r.matchers, labels) {
                return false;
            }
            let before = out.len();
            for &c in &r.children {
                if walk(routes, c, labels, out) && !routes[c].continue_ {
                    break;
                }
            }
            if out.len() == before {
                out.push(i);
            }
            true
        }
        let mut out = Vec::new();
        if !self.routes.is_empty() {
            walk(&self.routes, 0, labels, &mut out);
        }
        out
    }

    /// True when a silence or an inhibition rule mutes these labels now.
    pub fn muted(&self, fp: &str, labels: &(impl LabelLookup + ?Sized), now: i64) -> bool {
        self.silenced_by(labels, now).is_some() || self.inhibited(fp, labels)
    }

    pub fn silenced_by(&self, labels: &(impl LabelLookup + ?Sized), now: i64) -> Option<&Silence> {
        self.silences
            .iter()
            .find(|s| s.is_active(now) && all_match(&s.matchers, labels))
    }

    pub(super) fn inhibited(&self, fp: &str, labels: &(impl LabelLookup + ?Sized)) -> bool {
        self.inhibitors.iter().any(|inh| {
            all_match(&inh.rule.target_matchers, labels)
                && inh.sources.get(&inh.equal_key(labels)).is_some_and(|set| {
                    let self_both = all_match(&inh.rule.source_matchers, labels);
                    set.iter()
                        .any(|(src, both)| &**src != fp && !(self_both && *both))
                })
        })
    }
}

pub(super) fn compile_route(
    cfg: &RouteConfig,
    parent: Option<usize>,
    out: &mut Vec<Route>,
) -> usize {
    let p = parent.map(|i| &out[i]);
    let mut matchers = cfg.matchers.clone();
    matchers.sort_by(|a, b| (&a.name, &a.value, a.op).cmp(&(&b.name, &b.value, b.op)));
    let own = labels::render_matchers(&matchers);
    let key = match p {
        Some(p) => format!("{}/{own}", p.key),
        None => own,
    };
    let group_by = match &cfg.group_by {
        Some(g) if g.iter().any(|n| n == "...") => None,
        Some(g) => Some(g.clone()),
        None => p.and_then(|p| p.group_by.clone()).or(Some(Vec::new())),
    };
    let inherit = |own: Option<Duration>, from: Option<i64>, default: Duration| {
        own.map(ms).or(from).unwrap_or(ms(default))
    };
    let route = Route {
        key,
        receiver: match (&cfg.receiver, p) {
            (Some(own), _) => own.as_str().into(),
            (None, Some(parent)) => parent.receiver.clone(),
            (None, None) => "default".into(),
        },
        group_by,
        matchers,
        continue_: cfg.continue_,
        group_wait: inherit(cfg.group_wait, p.map(|p| p.group_wait), DEFAULT_GROUP_WAIT),
        group_interval: inherit(
            cfg.group_interval,
            p.map(|p| p.group_interval),
            DEFAULT_GROUP_INTERVAL,
        ),
        repeat_interval: inherit(
            cfg.repeat_interval,
            p.map(|p| p.repeat_interval),
            DEFAULT_REPEAT_INTERVAL,
        ),
        children: Vec::new(),
    };
    out.push(route);
    let me = out.len() - 1;
    for c in &cfg.routes {
        let child = compile_route(c, Some(me), out);
        out[me].children.push(child);
    }
    me
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AlertsConfig;
    use crate::labels::{Labels, of_pairs as labels, parse_matchers};

    fn route(matchers: &str, receiver: &str, continue_: bool) -> RouteConfig {
        RouteConfig {
            receiver: Some(receiver.into()),
            matchers: parse_matchers(matchers).unwrap(),
            continue_,
            group_by: None,
            group_wait: None,
            ..RouteConfig::default()
        }
    }

    #[test]
    fn children_inherit_and_continue_lets_an_alert_join_several_routes() {
        let mut cfg = AlertsConfig::default();
        cfg.route.receiver = Some("root".into());
        cfg.route.group_by = Some(vec!["team".into()]);
        cfg.route.group_wait = Some(Duration::from_secs(7));
        cfg.route.routes = vec![
            route(r#"team="core""#, "core", true),
            route(r#"severity="error""#, "errors", false),
            route(r#"team="core""#, "never", false),
        ];
        let engine = AlertEngine::new(&cfg);
        let names = |l: &Labels| -> Vec<String> {
            engine
                .matching_routes(l)
                .into_iter()
                .map(|i| engine.routes[i].receiver.to_string())
                .collect()
        };
        // `continue` on the first match goes on to the next sibling; the
        // second has none, so the third is never reached.
        assert_eq!(
            names(&labels(&[("team", "core"), ("severity", "error")])),
            ["core", "errors"]
        );
        assert_eq!(names(&labels(&[("team", "core")])), ["core", "never"]);
        // Nothing matches a child: the parent takes it.
        assert_eq!(names(&labels(&[("team", "web")])), ["root"]);
        // Children inherit grouping and timing they do not set.
        let core = &engine.routes[1];
        assert_eq!(core.group_by.as_deref(), Some(&["team".to_string()][..]));
        assert_eq!(core.group_wait, 7_000);
        assert_eq!(core.repeat_interval, ms(DEFAULT_REPEAT_INTERVAL));
    }
}
