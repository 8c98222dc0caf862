//! One module per `shoal` subcommand.

pub mod apply;
pub mod delete;
pub mod describe;
pub mod get;
pub mod logs;
pub mod node;
pub mod push;
pub mod registry;
pub mod rollout;
pub mod server;
pub mod spin;
pub mod transfer;
pub mod up;
pub mod wait;

/// Kinds the CLI accepts, with kubectl's singular/plural spellings.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// Apps.
    #[value(alias = "apps")]
    App,
    /// Jobs.
    #[value(alias = "jobs")]
    Job,
}

impl Kind {
    /// The lowercase singular, as in `app/NAME`.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::App => "app",
            Kind::Job => "job",
        }
    }
}

/// The kinds that have revisions and rollouts: Apps.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum RolloutKind {
    /// Apps.
    #[value(alias = "apps")]
    App,
}

/// Kinds `shoal get` lists: the object kinds plus events.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum GetKind {
    /// Apps.
    #[value(alias = "apps")]
    App,
    /// Jobs.
    #[value(alias = "jobs")]
    Job,
    /// The cluster's nodes.
    #[value(alias = "nodes")]
    Node,
    /// Events about the namespace's objects, oldest first.
    #[value(alias = "events")]
    Event,
}
