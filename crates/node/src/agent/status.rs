//! What the agent writes into an App's status: this node's report under `status.nodes.NAME`
//! (so that holders never overwrite each other's), then the summary of every holder's
//! report ([`shoal_api::AppStatus::summarize`]).

use shoal_api::{Activity, AppStatus, NodeAppStatus, Phase, ScaleStatus};
use shoal_runtime::ActivityState;

/// A change to this node's report about an App.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Patch {
    /// `generation` serves `digest`.
    Serving {
        generation: u64,
        digest: String,
        /// The WASI version of what serves.
        wasi: &'static str,
        activity: ActivityState,
    },
    /// The latest generation cannot serve; `message` says why (and what serves instead).
    Failed { message: String },
    /// The node has just started and serves nothing yet.
    NodeStarting { node: String },
    /// The serving generation went idle or came back.
    Scale { activity: ActivityState },
}

impl Patch {
    /// Applies the patch to node `node`'s report about `generation`, then summarises;
    /// idempotent (a condition keeps its transition time, the scale state its `since`, while
    /// they do not change).
    pub(crate) fn apply(
        &self,
        s: &mut AppStatus,
        node: &str,
        generation: u64,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        let report = s
            .nodes
            .entry(node.to_string())
            .or_insert_with(|| NodeAppStatus::new(generation));
        let verdict = match self {
            Patch::Serving {
                generation: serving,
                digest,
                wasi,
                activity,
            } => {
                set_scale(report, *activity, now, false);
                report.serving_generation = *serving;
                report.serving_component = Some(digest.clone());
                report.wasi = Some(wasi.to_string());
                Some((Phase::Ready, "Serving", None))
            }
            Patch::Failed { message } => {
                Some((Phase::Failed, "ComponentFailed", Some(message.clone())))
            }
            Patch::NodeStarting { node } => Some((
                Phase::Pending,
                "NodeStarting",
                Some(format!("node/{node} is starting and loading the component")),
            )),
            Patch::Scale { activity } => {
                set_scale(report, *activity, now, true);
                None
            }
        };
        if let Some((phase, reason, message)) = verdict {
            report.generation = generation;
            report.phase = phase;
            report.reason = reason.to_string();
            report.message = message;
        }
        s.summarize(generation, now);
    }
}

/// Records the activity `a` in `report`: always (`counts`: the counts changed too), or only
/// when the state changed, so that its `since` stays.
fn set_scale(
    report: &mut NodeAppStatus,
    a: ActivityState,
    now: chrono::DateTime<chrono::Utc>,
    counts: bool,
) {
    let state = if a.active {
        Activity::Active
    } else {
        Activity::Idle
    };
    if counts || report.scale.as_ref().map(|x| x.state) != Some(state) {
        report.scale = Some(ScaleStatus {
            state,
            since: now,
            scaled_to_zero: a.releases,
            activations: a.activations,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::policy::tests::ACTIVE;

    #[test]
    fn patches_are_idempotent() {
        let t0 = chrono::Utc::now();
        let t1 = t0 + chrono::Duration::seconds(5);
        let patch = Patch::Serving {
            generation: 3,
            digest: "sha256:abc".into(),
            wasi: "0.2",
            activity: ACTIVE,
        };
        let mut s = AppStatus::default();
        patch.apply(&mut s, "n1", 3, t0);
        let once = s.clone();
        patch.apply(&mut s, "n1", 3, t1);
        assert_eq!(s, once, "a second apply changes nothing, not even times");
        assert_eq!(s.phase, Phase::Ready);
        assert_eq!(s.scale.as_ref().unwrap().since, t0);
        Patch::Failed {
            message: "bad".into(),
        }
        .apply(&mut s, "n1", 3, t1);
        assert_eq!(s.conditions[0].last_transition_time, t1);
        assert_eq!(s.serving_generation, 3, "what serves is still reported");
    }

    #[test]
    fn an_app_is_ready_once_every_holder_serves_its_generation() {
        let now = chrono::Utc::now();
        let serving = |g| Patch::Serving {
            generation: g,
            digest: "sha256:abc".into(),
            wasi: "0.2",
            activity: ACTIVE,
        };
        let mut s = AppStatus {
            placement: Some(shoal_api::PlacementStatus {
                nodes: vec!["n1".into(), "n2".into()],
                message: None,
            }),
            ..AppStatus::default()
        };
        serving(1).apply(&mut s, "n1", 1, now);
        assert_eq!(s.phase, Phase::Pending);
        assert_eq!(
            s.message.as_deref(),
            Some("waiting for node/n2 to serve generation 1")
        );
        serving(1).apply(&mut s, "n2", 1, now);
        assert_eq!((s.phase, s.message.as_deref()), (Phase::Ready, None));
        // Generation 2: n2 fails it; n1's report about generation 1 does not count for 2.
        Patch::Failed {
            message: "no handler".into(),
        }
        .apply(&mut s, "n2", 2, now);
        assert_eq!(s.phase, Phase::Failed);
        assert_eq!(s.message.as_deref(), Some("node/n2: no handler"));
    }

    #[test]
    fn each_holder_reports_its_own_scale_and_the_summary_adds_them_up() {
        let t0 = chrono::Utc::now();
        let t1 = t0 + chrono::Duration::seconds(5);
        let mut s = AppStatus {
            placement: Some(shoal_api::PlacementStatus {
                nodes: vec!["n1".into(), "n2".into()],
                message: None,
            }),
            ..AppStatus::default()
        };
        for node in ["n1", "n2"] {
            Patch::Serving {
                generation: 1,
                digest: "sha256:abc".into(),
                wasi: "0.2",
                activity: ACTIVE,
            }
            .apply(&mut s, node, 1, t0);
        }
        let idle = ActivityState {
            active: false,
            activations: 0,
            releases: 1,
        };
        Patch::Scale { activity: idle }.apply(&mut s, "n1", 1, t1);
        // n2 still holds it loaded: the app is Active; n1's report says Idle.
        assert_eq!(s.scale.as_ref().unwrap().state, Activity::Active);
        assert_eq!(s.nodes["n1"].scale.as_ref().unwrap().state, Activity::Idle);
        Patch::Scale { activity: idle }.apply(&mut s, "n2", 1, t1);
        let summary = s.scale.as_ref().unwrap();
        assert_eq!((summary.state, summary.scaled_to_zero), (Activity::Idle, 2));
        assert_eq!(s.phase, Phase::Ready);
    }
}
