//! `Namespace`: the boundary between tenants — objects, routes' hosts, key-value data, logs
//! and events belong to one — with its quota; and the access tokens that reach one.

use crate::{ObjectMeta, Quantity};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A namespace; cluster-wide (its own `metadata.namespace` is always `default`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Namespace {
    /// Always `shoal/v1alpha1`.
    pub api_version: String,
    /// Always `Namespace`.
    pub kind: String,
    /// The namespace's name and labels.
    pub metadata: ObjectMeta,
    /// Its quota.
    #[serde(default)]
    pub spec: NamespaceSpec,
    /// What its objects use now, as the API computes it on a read; never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NamespaceStatus>,
}

impl Namespace {
    /// A namespace called `name` with no quota.
    pub fn named(name: &str) -> Self {
        Self {
            api_version: crate::API_VERSION.to_string(),
            kind: "Namespace".to_string(),
            metadata: ObjectMeta::named(name),
            spec: NamespaceSpec::default(),
            status: None,
        }
    }
}

/// What a namespace's objects may use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceSpec {
    /// Limits on what its objects use; none when omitted.
    #[serde(default, skip_serializing_if = "Quota::is_empty")]
    pub quota: Quota,
}

/// A namespace's limits; each one omitted is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quota {
    /// Apps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apps: Option<u64>,
    /// Jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<u64>,
    /// Memory its apps reserve: each app's `limits.memory` on each node that holds it
    /// (`placement.replicas`; `all` counts as one per node of the cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// Instances of its apps running at once, on each node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<u64>,
    /// Key-value data its apps keep, on each node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_value: Option<Quantity>,
    /// Bytes of the components and file trees its objects use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploads: Option<Quantity>,
}

impl Quota {
    /// Whether nothing is limited.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What a namespace's objects use, against its [`Quota`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceStatus {
    /// Apps in it.
    pub apps: u64,
    /// Jobs in it.
    pub jobs: u64,
    /// Memory its apps reserve, in bytes.
    pub memory: u64,
    /// Bytes of the distinct components and file trees its objects use.
    pub uploads: u64,
}

/// What an access token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    /// Read its namespace's objects, logs and events.
    View,
    /// Also apply and delete objects in its namespace, upload and pull components.
    Edit,
    /// Everything, in every namespace: namespaces, tokens, nodes.
    Admin,
}

impl std::fmt::Display for TokenRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenRole::View => "view",
            TokenRole::Edit => "edit",
            TokenRole::Admin => "admin",
        })
    }
}

/// An access token as the API shows it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// What names it (`shoal delete token ID`); the token itself starts with it.
    pub id: String,
    /// The namespace a `view` or `edit` token reaches; none for `admin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// What it may do.
    pub role: TokenRole,
    /// When it was made.
    pub created: DateTime<Utc>,
}

/// `POST /v1/tokens`: the token to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    /// The namespace, for `view` and `edit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// What it may do.
    pub role: TokenRole,
}

/// The answer to `POST /v1/tokens`: the token, shown this once, and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    /// The bearer token.
    pub token: String,
    /// What it is.
    pub info: TokenInfo,
}
