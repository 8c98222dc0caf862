//! What the system observed about an App: each holder's report, and the summary every
//! reader sees, made from the reports by one function ([`AppStatus::summarize`]) that the node
//! and the placement controller both call.

use crate::short_digest;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Coarse lifecycle of an App.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Accepted; not yet compiled and checked.
    #[default]
    Pending,
    /// The component compiled, exports a supported handler, and serves its routes.
    Ready,
    /// The latest spec cannot run; `message` says why.
    Failed,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// What the system observed about an App.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    /// Pending, Ready or Failed.
    #[serde(default)]
    pub phase: Phase,
    /// Why the app is not Ready, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The `metadata.generation` this status describes.
    #[serde(default)]
    pub observed_generation: u64,
    /// The generation that serves traffic on every holder (the oldest one a holder serves;
    /// 0: none). Summarised from `nodes`.
    #[serde(default)]
    pub serving_generation: u64,
    /// Digest of that generation's component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_component: Option<String>,
    /// The WASI version that component is written against (`0.2` or `0.3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasi: Option<String>,
    /// What each node that holds the app last reported (one entry on a single node).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes: BTreeMap<String, NodeAppStatus>,
    /// The nodes of a cluster chosen to hold the app (written by the leading server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementStatus>,
    /// Whether the serving generation is loaded (Active: on some holder) or released while
    /// idle (Idle: on every holder). Summarised from `nodes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScaleStatus>,
    /// Detailed conditions, Kubernetes style.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The W3C `traceparent` of the traced apply that made the latest generation: each
    /// node traces its deploy of that generation under it. Absent when the server traces
    /// nothing (no `--otlp-endpoint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// One node's report about an app it holds: what it makes of the latest generation, and what
/// it serves now. Each node writes only its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAppStatus {
    /// The generation the report is about.
    pub generation: u64,
    /// Ready (serves it), Failed (cannot) or Pending (loading, or the node is starting).
    pub phase: Phase,
    /// CamelCase reason, as in the Ready condition.
    pub reason: String,
    /// Why it is not Ready, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The generation this node serves (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub serving_generation: u64,
    /// The digest of the component this node serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_component: Option<String>,
    /// The WASI version of the component this node serves (`0.2` or `0.3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasi: Option<String>,
    /// Whether the app is loaded on this node or idle there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScaleStatus>,
}

impl NodeAppStatus {
    /// A report about `generation` that says nothing yet.
    pub fn new(generation: u64) -> Self {
        Self {
            generation,
            phase: Phase::Pending,
            reason: String::new(),
            message: None,
            serving_generation: 0,
            serving_component: None,
            wasi: None,
            scale: None,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Where the leading server placed an app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementStatus {
    /// The nodes that hold it.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Why it holds fewer nodes than asked (or none: Unschedulable), when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Scale-to-zero state of an App on its node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleStatus {
    /// Active or Idle.
    pub state: Activity,
    /// When it entered that state.
    pub since: DateTime<Utc>,
    /// Times it went idle since it was deployed on the node (in a summary: on all holders).
    #[serde(default)]
    pub scaled_to_zero: u64,
    /// Times a request brought it back from idle since it was deployed on the node (in a
    /// summary: on all holders).
    #[serde(default)]
    pub activations: u64,
}

/// Whether an app holds its compiled code in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activity {
    /// Loaded: requests instantiate at once.
    Active,
    /// Released after `idleAfter` without requests; the next request reloads it from the
    /// compile cache.
    Idle,
}

impl std::fmt::Display for Activity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// A named boolean fact about an object, with the reason it last changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase machine-readable reason.
    pub reason: String,
    /// Human-readable explanation.
    #[serde(default)]
    pub message: String,
    /// When `status` last changed.
    pub last_transition_time: DateTime<Utc>,
}

impl AppStatus {
    /// The app's phase, message, Ready condition, serving generation and scale state, from
    /// its holders' reports about `generation` (the latest): Failed if one cannot serve it,
    /// Ready once every holder serves it, Pending until then (or while no node holds it).
    /// A pure function of the reports and the placement, so writing it twice changes nothing.
    pub fn summarize(&mut self, generation: u64, now: DateTime<Utc>) {
        let holders: Vec<String> = match &self.placement {
            Some(p) if !p.nodes.is_empty() => p.nodes.clone(),
            Some(_) => Vec::new(),
            None => self.nodes.keys().cloned().collect(),
        };
        let held: Vec<&NodeAppStatus> = holders.iter().filter_map(|n| self.nodes.get(n)).collect();
        let (serving, scale) = serving_summary(&held);
        (self.serving_generation, self.serving_component, self.wasi) = serving;
        self.scale = scale;
        let several = holders.len() > 1;
        let reports: Vec<(&String, &NodeAppStatus)> = holders
            .iter()
            .filter_map(|n| self.nodes.get(n).map(|r| (n, r)))
            .filter(|(_, r)| r.generation == generation)
            .collect();
        let said = |n: &str, text: &str| {
            if several {
                format!("node/{n}: {text}")
            } else {
                text.to_string()
            }
        };
        let (phase, ready, reason, text) = if holders.is_empty() {
            let why = self
                .placement
                .as_ref()
                .and_then(|p| p.message.clone())
                .unwrap_or_else(|| "no node holds it yet".into());
            (Phase::Pending, false, "Unschedulable".to_string(), why)
        } else if let Some((n, r)) = reports.iter().find(|(_, r)| r.phase != Phase::Ready) {
            let text = said(n, r.message.as_deref().unwrap_or(""));
            (r.phase, false, r.reason.clone(), text)
        } else if reports.len() == holders.len() {
            let text = format!(
                "generation {} serves {}",
                self.serving_generation,
                short_digest(self.serving_component.as_deref().unwrap_or(""))
            );
            (Phase::Ready, true, "Serving".to_string(), text)
        } else {
            let waiting: Vec<String> = holders
                .iter()
                .filter(|h| !reports.iter().any(|(n, _)| n == h))
                .map(|h| format!("node/{h}"))
                .collect();
            let text = format!(
                "waiting for {} to serve generation {generation}",
                waiting.join(", ")
            );
            (Phase::Pending, false, "Loading".to_string(), text)
        };
        self.phase = phase;
        self.message = (!ready).then(|| text.clone());
        self.set_condition("Ready", ready, &reason, &text, now);
    }
}

/// What serves on every holder (the oldest generation one serves, and its component), and
/// whether the app is loaded anywhere, from the holders' reports `held`.
fn serving_summary(
    held: &[&NodeAppStatus],
) -> ((u64, Option<String>, Option<String>), Option<ScaleStatus>) {
    let oldest = held
        .iter()
        .filter(|r| r.serving_generation > 0)
        .min_by_key(|r| r.serving_generation);
    let serving = (
        oldest.map_or(0, |r| r.serving_generation),
        oldest.and_then(|r| r.serving_component.clone()),
        oldest.and_then(|r| r.wasi.clone()),
    );
    let scales: Vec<&ScaleStatus> = held.iter().filter_map(|r| r.scale.as_ref()).collect();
    let active: Vec<&&ScaleStatus> = scales
        .iter()
        .filter(|s| s.state == Activity::Active)
        .collect();
    let since = if active.is_empty() {
        // Idle everywhere since the last holder went idle.
        scales.iter().map(|s| s.since).max()
    } else {
        // Active since the first holder that is became active.
        active.iter().map(|s| s.since).min()
    };
    let scale = since.map(|since| ScaleStatus {
        state: if active.is_empty() {
            Activity::Idle
        } else {
            Activity::Active
        },
        since,
        scaled_to_zero: scales.iter().map(|s| s.scaled_to_zero).sum(),
        activations: scales.iter().map(|s| s.activations).sum(),
    });
    (serving, scale)
}

impl AppStatus {
    /// Sets condition `type_`, keeping its transition time when the status did not change.
    pub fn set_condition(
        &mut self,
        type_: &str,
        status: bool,
        reason: &str,
        message: &str,
        now: DateTime<Utc>,
    ) {
        let status = if status { "True" } else { "False" }.to_string();
        match self.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = now;
                }
                c.status = status;
                c.reason = reason.into();
                c.message = message.into();
            }
            None => self.conditions.push(Condition {
                type_: type_.into(),
                status,
                reason: reason.into(),
                message: message.into(),
                last_transition_time: now,
            }),
        }
    }
}
