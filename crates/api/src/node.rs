//! The Node kind: a worker of a cluster, registered and kept alive by `shoal node`.

use crate::{ObjectMeta, ObjectRef};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A worker: where it can be reached, what it can hold, and whether it is alive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Node {
    /// Always `shoal/v1alpha1`.
    pub api_version: String,
    /// Always `Node`.
    pub kind: String,
    /// The node's name (unique in the cluster) and labels; its namespace is always `default`.
    pub metadata: ObjectMeta,
    /// What the node says of itself when it starts.
    pub spec: NodeSpec,
    /// Written by the node (its heartbeat and load) and by the leading server (its phase).
    #[serde(default)]
    pub status: NodeStatus,
}

impl Node {
    /// The `node/NAME` reference used in messages.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::new("node", crate::DEFAULT_NAMESPACE, &self.metadata.name)
    }
}

/// What a node offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSpec {
    /// Its ingress, as other nodes reach it to forward requests (`http://HOST:PORT`).
    pub address: String,
    /// Memory it offers to apps, in bytes (reservations of placed apps stay under it).
    pub capacity_memory: u64,
    /// Instances it can run at once (its pool size).
    pub max_instances: u32,
}

/// Whether a node counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodePhase {
    /// Registered, not yet confirmed alive.
    #[default]
    Pending,
    /// Alive: its heartbeats arrive.
    Ready,
    /// Its heartbeats stopped; its apps are placed elsewhere.
    NotReady,
}

impl std::fmt::Display for NodePhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// What is observed about a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// Ready or NotReady, as the leading server judges from the heartbeats.
    #[serde(default)]
    pub phase: NodePhase,
    /// Counts up with every heartbeat of the node (the server times them by its own clock).
    #[serde(default)]
    pub heartbeats: u64,
    /// When the node last reported (its own clock; for people).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// Apps the node serves now.
    #[serde(default)]
    pub apps: u32,
    /// Memory reserved by the apps placed on it, in bytes.
    #[serde(default)]
    pub memory_reserved: u64,
    /// Why it is NotReady, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `POST /v1/nodes/NAME/certificate`: the public half of a key node NAME made, to certify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeCertificateRequest {
    /// A PEM `PUBLIC KEY`.
    pub public_key: String,
}

/// The answer: the node's certificate for its TLS name, and the CA that issued it (what the
/// node verifies its peers by).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeCertificate {
    /// PEM.
    pub certificate: String,
    /// The cluster's CA certificate, PEM.
    pub ca: String,
}
