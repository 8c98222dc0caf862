//! One module per `shoal` subcommand.

pub mod apply;
pub mod completion;
pub mod create;
pub mod delete;
pub mod describe;
pub mod get;
pub mod join;
pub mod logs;
pub mod node;
pub mod push;
pub mod registry;
pub mod rollout;
pub mod server;
pub mod spin;
pub mod tenants;
pub mod top;
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

/// Kinds `shoal describe` shows.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum DescribeKind {
    /// Apps.
    #[value(alias = "apps")]
    App,
    /// Jobs.
    #[value(alias = "jobs")]
    Job,
    /// Namespaces: their quota and what their objects use.
    #[value(alias = "namespaces", alias = "ns")]
    Namespace,
}

/// Kinds `shoal delete` removes: the object kinds, and nodes (removed from the cluster).
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum DeleteKind {
    /// Apps.
    #[value(alias = "apps")]
    App,
    /// Jobs.
    #[value(alias = "jobs")]
    Job,
    /// A cluster's nodes: the credential is revoked, the apps placed elsewhere.
    #[value(alias = "nodes")]
    Node,
    /// Namespaces, with everything in them.
    #[value(alias = "namespaces", alias = "ns")]
    Namespace,
    /// Access tokens, by id: refused from the next request on.
    #[value(alias = "tokens")]
    Token,
}

impl DeleteKind {
    /// The lowercase singular, as in `node/NAME`.
    pub fn noun(self) -> &'static str {
        match self {
            DeleteKind::App => "app",
            DeleteKind::Job => "job",
            DeleteKind::Node => "node",
            DeleteKind::Namespace => "namespace",
            DeleteKind::Token => "token",
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
    /// Namespaces.
    #[value(alias = "namespaces", alias = "ns")]
    Namespace,
    /// Access tokens (never their secrets).
    #[value(alias = "tokens")]
    Token,
}
