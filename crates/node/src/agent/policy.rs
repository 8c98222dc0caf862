//! The agent's policy: the next step for one App on this node, a pure function of the App
//! and what the node knows of it.

use super::status::Patch;
use shoal_api::App;
use shoal_runtime::ActivityState;

/// What the node knows of one App beyond the object itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct Known {
    /// The generation this node serves, its WASI version, and the app's activity as last
    /// reported.
    pub serving: Option<(u64, &'static str, ActivityState)>,
    /// Why the latest generation cannot serve, once that is known.
    pub failed: Option<String>,
    /// The latest generation is being loaded or health-checked; its end reconciles again.
    pub in_progress: bool,
}

/// The next step for an App on this node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Store what the status should say.
    Report(Patch),
    /// Compile or load the latest generation (then check and install it).
    Load,
    /// Nothing until the work under way ends.
    Wait,
}

/// Decides the next step for `app` given what the node knows of it; level-triggered and
/// idempotent: it looks only at the latest spec and the node's state, never at what woke it.
pub(crate) fn reconcile(app: &App, known: &Known) -> Step {
    let generation = app.metadata.generation;
    match &known.serving {
        Some((serving, wasi, activity)) if *serving == generation => {
            return Step::Report(Patch::Serving {
                generation,
                digest: app.spec.component.to_string(),
                wasi,
                activity: *activity,
            });
        }
        _ => {}
    }
    if let Some(message) = &known.failed {
        let message = match known.serving {
            Some((g, _, _)) => format!("{message}; generation {g} keeps serving"),
            None => message.clone(),
        };
        return Step::Report(Patch::Failed { message });
    }
    if known.in_progress {
        return Step::Wait;
    }
    Step::Load
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn app(generation: u64) -> App {
        let yaml = format!(
            "apiVersion: shoal/v1alpha1\nkind: App\nmetadata: {{name: a}}\nspec:\n  component: sha256:{}\n  routes: [{{path: /}}]\n",
            "0".repeat(64)
        );
        let mut app: App = serde_yaml::from_str(&yaml).unwrap();
        app.metadata.generation = generation;
        app
    }

    pub(crate) const ACTIVE: ActivityState = ActivityState {
        active: true,
        activations: 0,
        releases: 0,
    };

    #[test]
    fn reconcile_decides_from_the_latest_generation_and_what_the_node_knows() {
        let a = app(2);
        let known = |serving: Option<u64>, failed: Option<&str>, in_progress: bool| Known {
            serving: serving.map(|g| (g, "0.2", ACTIVE)),
            failed: failed.map(str::to_string),
            in_progress,
        };
        let serving = Step::Report(Patch::Serving {
            generation: 2,
            digest: a.spec.component.to_string(),
            wasi: "0.2",
            activity: ACTIVE,
        });
        for (k, expected) in [
            (known(None, None, false), Step::Load),
            (known(Some(1), None, false), Step::Load),
            (known(Some(1), None, true), Step::Wait),
            (known(Some(2), None, false), serving.clone()),
            // Serving wins over a stale failure of the same generation.
            (known(Some(2), Some("x"), false), serving),
            (
                known(Some(1), Some("no handler"), false),
                Step::Report(Patch::Failed {
                    message: "no handler; generation 1 keeps serving".into(),
                }),
            ),
            (
                known(None, Some("no handler"), true),
                Step::Report(Patch::Failed {
                    message: "no handler".into(),
                }),
            ),
        ] {
            assert_eq!(reconcile(&a, &k), expected, "{k:?}");
        }
    }
}
