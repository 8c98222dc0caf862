//! Where everything lives in the key space: each kind of object as a [`Resource`] (its key
//! prefix, how its keys are made and read back, and its versioning), and the few raw keys
//! that are not objects. No key prefix is written anywhere else.

use serde::Serialize;
use serde::de::DeserializeOwned;
use shoal_api::{App, Event, Job, Namespace, Node, ObjectMeta, Revision};

/// A kind of API object as the store keeps it: JSON under `PREFIX…`, with
/// `metadata.resourceVersion` being the key's modification revision.
pub trait Resource: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The prefix of every key of this kind, e.g. `apps/`.
    const PREFIX: &'static str;
    /// Keys are `PREFIX<namespace>/<name>`; otherwise `PREFIX<name>` (cluster-wide kinds).
    const NAMESPACED: bool = true;

    /// The object's metadata.
    fn metadata(&self) -> &ObjectMeta;

    /// The object's metadata, to change.
    fn metadata_mut(&mut self) -> &mut ObjectMeta;

    /// Where this object is stored.
    fn key(&self) -> String {
        let meta = self.metadata();
        key::<Self>(&meta.namespace, &meta.name)
    }

    /// The namespace and name stored at `key`, if it is a key of this kind.
    fn parse_key(key: &str) -> Option<ObjectKey> {
        let rest = key.strip_prefix(Self::PREFIX)?;
        if !Self::NAMESPACED {
            return (!rest.is_empty() && !rest.contains('/')).then(|| ObjectKey {
                namespace: shoal_api::DEFAULT_NAMESPACE.to_string(),
                name: rest.to_string(),
            });
        }
        let (namespace, name) = rest.split_once('/')?;
        (!name.is_empty() && !name.contains('/')).then(|| ObjectKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

/// Objects whose `status` is written by the system (nodes, controllers) and nothing else.
pub trait HasStatus: Resource {
    /// The status type.
    type Status: Clone + PartialEq + Send + Sync;

    /// The object's status.
    fn status(&self) -> &Self::Status;

    /// The object's status, to change.
    fn status_mut(&mut self) -> &mut Self::Status;
}

/// Which object: its namespace and name (`default` for cluster-wide kinds).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl ObjectKey {
    /// `name` in `namespace`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of `object`.
    pub fn of(meta: &ObjectMeta) -> Self {
        Self::new(&meta.namespace, &meta.name)
    }
}

/// The key of object `name` of kind `T` in `namespace`.
pub fn key<T: Resource>(namespace: &str, name: &str) -> String {
    if T::NAMESPACED {
        format!("{}{namespace}/{name}", T::PREFIX)
    } else {
        format!("{}{name}", T::PREFIX)
    }
}

/// The prefix of every object of kind `T` in `namespace`, or in every namespace.
pub fn prefix<T: Resource>(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if T::NAMESPACED => format!("{}{ns}/", T::PREFIX),
        _ => T::PREFIX.to_string(),
    }
}

macro_rules! resource {
    ($ty:ty, $prefix:literal, namespaced: $ns:literal) => {
        impl Resource for $ty {
            const PREFIX: &'static str = $prefix;
            const NAMESPACED: bool = $ns;

            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

resource!(App, "apps/", namespaced: true);
resource!(Job, "jobs/", namespaced: true);
resource!(Node, "nodes/", namespaced: false);
resource!(Event, "events/", namespaced: true);
resource!(Namespace, "namespaces/", namespaced: false);

impl Resource for Revision {
    const PREFIX: &'static str = "revisions/";

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }

    /// `revisions/NS/APP/N`, N zero-padded so that a listing is in order.
    fn key(&self) -> String {
        format!(
            "{}{:020}",
            revisions_of(&self.metadata.namespace, &self.app),
            self.revision
        )
    }

    fn parse_key(_key: &str) -> Option<ObjectKey> {
        // Revisions are read by listing an app's prefix, never watched by key.
        None
    }
}

/// The prefix of every revision of App `app`.
pub fn revisions_of(namespace: &str, app: &str) -> String {
    format!("{}{namespace}/{app}/", Revision::PREFIX)
}

/// The prefix of every event about `kind/name` (event names start with `kind.name.`).
pub fn events_about(about: &shoal_api::ObjectRef) -> String {
    key::<Event>(&about.namespace, &format!("{}.{}.", about.kind, about.name))
}

macro_rules! status {
    ($ty:ty, $status:ty) => {
        impl HasStatus for $ty {
            type Status = $status;

            fn status(&self) -> &$status {
                &self.status
            }

            fn status_mut(&mut self) -> &mut $status {
                &mut self.status
            }
        }
    };
}

status!(App, shoal_api::AppStatus);
status!(Job, shoal_api::JobStatus);
status!(Node, shoal_api::NodeStatus);

/// Keys that hold no API object.
pub mod raw {
    /// Route claims: `routes/<host or *><path>` → `namespace/name` of the app serving it.
    pub const ROUTE_CLAIMS: &str = "routes/";
    /// Host claims: `hosts/<host>` → the namespace whose apps serve that host; no other
    /// namespace's app may route it.
    pub const HOST_CLAIMS: &str = "hosts/";
    /// Servers of a cluster, each under `servers/<id>` on its lease.
    pub const SERVERS: &str = "servers/";
    /// Nodes' liveness leases: `leases/nodes/<name>` → the etcd lease id.
    pub const NODE_LEASES: &str = "leases/nodes/";
    /// The leading server's lease.
    pub const LEADER: &str = "cluster/leader";
    /// The cluster's client token.
    pub const CLIENT_TOKEN: &str = "cluster/tokens/client";
    /// The cluster's join token: it admits a new node, nothing else.
    pub const JOIN_TOKEN: &str = "cluster/tokens/node";
    /// Nodes' credentials: `cluster/nodes/<name>` → the secret of node `name`'s credential.
    pub const NODE_CREDENTIALS: &str = "cluster/nodes/";
    /// Access tokens: `cluster/access/<id>` → what the token may do and its secret's SHA-256.
    pub const ACCESS_TOKENS: &str = "cluster/access/";
    /// The cluster's certificate authority (certificate and key, JSON): what every server's
    /// certificate is issued by when it is given none.
    pub const CLUSTER_CA: &str = "cluster/ca";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        assert_eq!(key::<App>("default", "a"), "apps/default/a");
        assert_eq!(key::<Node>("default", "n1"), "nodes/n1");
        assert_eq!(App::parse_key("apps/ns/a"), Some(ObjectKey::new("ns", "a")));
        assert_eq!(
            Node::parse_key("nodes/n1"),
            Some(ObjectKey::new("default", "n1"))
        );
        assert_eq!(App::parse_key("jobs/ns/a"), None);
        assert_eq!(App::parse_key("apps/ns"), None);
        assert_eq!(prefix::<Job>(Some("ns")), "jobs/ns/");
        assert_eq!(prefix::<Node>(Some("ns")), "nodes/");
    }
}
