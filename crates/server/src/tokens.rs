//! Access tokens: `access.ID.SECRET`, made by an admin for one namespace and role (`view`,
//! `edit`) or for everything (`admin`). The store keeps what a token may do and its secret's
//! SHA-256 under [`raw::ACCESS_TOKENS`]`ID` — never the secret — and the token is shown once.
//! A request's token is looked up on every request, so a deleted one is refused at once.
//! (Their endpoints: `token_api`.)

use crate::{ApiError, ApiState};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use shoal_api::{CreatedToken, Namespace, TokenInfo, TokenRole};
use shoal_store::{Precondition, raw};

/// What an access token may do: see [`TokenRole`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The token's id.
    pub id: String,
    /// The namespace of a `view` or `edit` token.
    pub namespace: Option<String>,
    /// What it may do.
    pub role: TokenRole,
}

impl Access {
    /// The one namespace it reaches, unless it reaches all (`admin`).
    pub fn only_namespace(&self) -> Option<&str> {
        match self.role {
            TokenRole::Admin => None,
            _ => self.namespace.as_deref(),
        }
    }
}

/// What an access token starts with; then its id, a dot and its secret.
const PREFIX: &str = "access.";

/// What the store keeps of a token.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    role: TokenRole,
    created: chrono::DateTime<chrono::Utc>,
    sha256: String,
}

impl Stored {
    fn info(self, id: &str) -> TokenInfo {
        TokenInfo {
            id: id.to_string(),
            namespace: self.namespace,
            role: self.role,
            created: self.created,
        }
    }
}

fn key(id: &str) -> String {
    format!("{}{id}", raw::ACCESS_TOKENS)
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The id an access token `access.ID.SECRET` names, if it is one.
pub(crate) fn token_id(presented: &str) -> Option<&str> {
    let (id, secret) = presented.strip_prefix(PREFIX)?.split_once('.')?;
    (!id.is_empty() && !secret.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(id)
}

/// What `presented` may do, if it is a current access token.
pub(crate) async fn verify(state: &ApiState, presented: &str) -> Result<Option<Access>, ApiError> {
    let Some(id) = token_id(presented) else {
        return Ok(None);
    };
    let secret = &presented[PREFIX.len() + id.len() + 1..];
    let Some(kv) = state.objects.store().get(&key(id)).await? else {
        return Ok(None);
    };
    let stored: Stored = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::Unavailable(format!("token {id} is stored unreadable: {e}")))?;
    if !crate::secret::constant_time_eq(hash(secret).as_bytes(), stored.sha256.as_bytes()) {
        return Ok(None);
    }
    Ok(Some(Access {
        id: id.to_string(),
        namespace: stored.namespace,
        role: stored.role,
    }))
}

/// Every access token, by id.
pub(crate) async fn all(state: &ApiState) -> Result<Vec<TokenInfo>, ApiError> {
    let (kvs, _) = state.objects.store().list(raw::ACCESS_TOKENS).await?;
    Ok(kvs
        .into_iter()
        .filter_map(|kv| {
            let id = kv.key.strip_prefix(raw::ACCESS_TOKENS)?.to_string();
            let stored: Stored = serde_json::from_slice(&kv.value).ok()?;
            Some(stored.info(&id))
        })
        .collect())
}

/// Makes a token for `role` (in `namespace`, which the caller checked); shown this once.
pub(crate) async fn issue(
    state: &ApiState,
    namespace: Option<String>,
    role: TokenRole,
) -> Result<CreatedToken, ApiError> {
    let id = hex::encode(rand::random::<[u8; 6]>());
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let stored = Stored {
        namespace,
        role,
        created: chrono::Utc::now(),
        sha256: hash(&secret),
    };
    let value = serde_json::to_vec(&stored).map_err(|e| ApiError::Unavailable(e.to_string()))?;
    state
        .objects
        .store()
        .put(&key(&id), value, Precondition::Absent)
        .await?;
    Ok(CreatedToken {
        token: format!("{PREFIX}{id}.{secret}"),
        info: stored.info(&id),
    })
}

/// Deletes token `id`; whether it existed.
pub(crate) async fn revoke(state: &ApiState, id: &str) -> Result<bool, ApiError> {
    Ok(state
        .objects
        .store()
        .delete(&key(id), Precondition::None)
        .await?
        .is_some())
}

/// Deletes every token of namespace `ns` (the namespace is being deleted).
pub(crate) async fn delete_in(state: &ApiState, ns: &Namespace) -> Result<(), ApiError> {
    for t in all(state).await? {
        if t.namespace.as_deref() == Some(ns.metadata.name.as_str()) {
            state
                .objects
                .store()
                .delete(&key(&t.id), Precondition::None)
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_id() {
        assert_eq!(token_id("access.0a1b.secret"), Some("0a1b"));
        assert_eq!(token_id("access.0a1b."), None);
        assert_eq!(token_id("access..secret"), None);
        assert_eq!(token_id("access.xyz.secret"), None);
        assert_eq!(token_id("node.n1.secret"), None);
    }
}
