//! Who a request comes from, by its bearer token, and what each may reach:
//!
//! - the **client token** (the one `shoal up` and `shoal server` write to `DATA_DIR/token`):
//!   everything;
//! - an **access token** (`access.ID.SECRET`, see `tokens`): `admin` everything; `view` reads
//!   its namespace's objects, logs and events; `edit` also applies and deletes there, and
//!   uploads and pulls components. Any other namespace's paths are 403, whether or not the
//!   object exists;
//! - the **join token** of a cluster: `POST /v1/nodes/{name}/join` for a name no node has
//!   yet — it admits a new node, and that is all it does;
//! - a **node's credential** (`node.NAME.SECRET`, from a join or `shoal create node`): the
//!   store API as node NAME (reads, and only NAME's own writes — see `store_api`), NAME's
//!   lease and certificate, blob downloads and `/v1/info`.
//!
//! Credentials live in the store under [`shoal_store::raw::NODE_CREDENTIALS`]; one is checked
//! on every request, so a revoked node (`shoal delete node`) is refused at once.

use crate::secret::constant_time_eq;
pub use crate::tokens::Access;
use crate::{ApiError, ApiState};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shoal_api::TokenRole;
use shoal_store::{Precondition, StoreError};
use std::sync::Arc;

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A user or the CLI with the client token: everything.
    Client,
    /// A user with an access token.
    Token(Access),
    /// Holder of the cluster's join token: may obtain the credential of a new node.
    Join,
    /// Node `0`, by its own credential.
    Node(String),
}

impl Role {
    /// Whether it may do everything.
    pub fn is_admin(&self) -> bool {
        match self {
            Role::Client => true,
            Role::Token(a) => a.role == TokenRole::Admin,
            Role::Join | Role::Node(_) => false,
        }
    }
}

/// What a node's credential starts with; then its name, a dot and its secret.
const PREFIX: &str = "node.";

/// The node a credential `node.NAME.SECRET` names, if it is one.
pub fn credential_node(credential: &str) -> Option<&str> {
    let (name, secret) = credential.strip_prefix(PREFIX)?.split_once('.')?;
    (!secret.is_empty() && shoal_api::validate_dns_label(name).is_ok()).then_some(name)
}

fn key(name: &str) -> String {
    format!("{}{name}", shoal_store::raw::NODE_CREDENTIALS)
}

/// Makes node `name`'s credential, or (`replace`) a new one that revokes the old one; a
/// name that has one already is a conflict otherwise.
///
/// # Errors
/// [`ApiError::Conflict`] when `name` has a credential and `replace` is false; store errors.
pub(crate) async fn issue(state: &ApiState, name: &str, replace: bool) -> Result<String, ApiError> {
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let pre = if replace {
        Precondition::None
    } else {
        Precondition::Absent
    };
    match state
        .objects
        .store()
        .put(&key(name), secret.clone().into_bytes(), pre)
        .await
    {
        Ok(_) => Ok(format!("{PREFIX}{name}.{secret}")),
        Err(StoreError::Conflict { .. }) => Err(ApiError::Conflict(format!(
            "node/{name} has joined already; a node that lost its data dir gets a new credential once an operator revokes the old one (shoal delete node {name}), or from shoal create node {name} --replace"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Node `name`'s credential, as the servers present it to the node (to read its logs).
pub(crate) async fn of(state: &ApiState, name: &str) -> Result<Option<String>, ApiError> {
    Ok(state
        .objects
        .store()
        .get(&key(name))
        .await?
        .map(|kv| format!("{PREFIX}{name}.{}", String::from_utf8_lossy(&kv.value))))
}

/// Revokes node `name`'s credential; whether there was one.
pub(crate) async fn revoke(state: &ApiState, name: &str) -> Result<bool, ApiError> {
    Ok(state
        .objects
        .store()
        .delete(&key(name), Precondition::None)
        .await?
        .is_some())
}

/// The node whose credential `presented` is, if it is a current one.
async fn verify(state: &ApiState, presented: &str) -> Result<Option<String>, ApiError> {
    let Some(name) = credential_node(presented) else {
        return Ok(None);
    };
    let current = of(state, name).await?;
    Ok(current
        .is_some_and(|c| constant_time_eq(c.as_bytes(), presented.as_bytes()))
        .then(|| name.to_string()))
}

/// Whether `role` may make `req`; the reason it may not otherwise.
fn allowed(role: &Role, req: &Request) -> Result<(), String> {
    let path = req.uri().path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method();
    let ok = match role {
        Role::Client => true,
        Role::Join => {
            path == "/v1/info"
                || (method == http::Method::POST
                    && matches!(segments.as_slice(), ["v1", "nodes", _, "join"]))
        }
        Role::Node(name) => {
            path.starts_with("/v1/store/")
                || path == "/v1/info"
                || segments == ["v1", "nodes", name.as_str(), "lease"]
                || (method == http::Method::POST
                    && segments == ["v1", "nodes", name.as_str(), "certificate"])
                || (path.starts_with("/v1/blobs/") && method == http::Method::GET)
        }
        Role::Token(a) if a.role == TokenRole::Admin => true,
        Role::Token(a) => return token_allowed(a, method, &segments),
    };
    if ok {
        return Ok(());
    }
    Err(match role {
        Role::Node(name) => format!("node/{name}'s credential cannot use {path}"),
        _ => format!("the join token cannot use {path}"),
    })
}

/// What a `view` or `edit` token may do: its namespace's paths (`edit` for writes), the
/// uploads and pulls an apply makes (`edit`), `/v1/info`, the list of namespaces (which
/// shows it only its own) and whether a blob is held (`HEAD`, which an apply asks before an
/// upload: a refused apply then says why in words).
fn token_allowed(a: &Access, method: &http::Method, segments: &[&str]) -> Result<(), String> {
    let ns = a.namespace.as_deref().unwrap_or_default();
    let read = method == http::Method::GET || method == http::Method::HEAD;
    let who = format!("token {} ({} in namespace {ns})", a.id, a.role);
    let needs_edit = || {
        if a.role >= TokenRole::Edit {
            Ok(())
        } else {
            Err(format!(
                "{who} cannot {method} /{}: it may only read; ask an admin for an edit token",
                segments.join("/")
            ))
        }
    };
    match segments {
        ["v1", "info"] | ["v1", "namespaces"] if read => Ok(()),
        ["v1", "namespaces", n] if read && *n == ns => Ok(()),
        ["v1", "namespaces", n, ..] if *n != ns => Err(format!(
            "{who} cannot reach namespace {n}: it reaches only namespace {ns}"
        )),
        ["v1", "namespaces", _, _, ..] if read => Ok(()),
        ["v1", "namespaces", _, _, ..] => needs_edit(),
        ["v1", "blobs"] | ["v1", "pull"] if method == http::Method::POST => needs_edit(),
        ["v1", "blobs", _] if method == http::Method::HEAD => Ok(()),
        _ => Err(format!(
            "{who} cannot {method} /{}: only an admin token may",
            segments.join("/")
        )),
    }
}

/// The cookie the dashboard's login form sets (`ui`): a token, sent back by the browser. It
/// authenticates reads only (`GET`, `HEAD`), so a page elsewhere that makes the browser send
/// it cannot change anything; writes take the token in `Authorization` as the CLI sends it.
pub(crate) const SESSION_COOKIE: &str = "shoal_session";

/// The token `req` presents: its bearer token, else (for a read) the dashboard's cookie.
fn presented(req: &Request) -> Option<String> {
    let headers = req.headers();
    if let Some(auth) = headers.get(http::header::AUTHORIZATION) {
        return auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
    }
    let read = req.method() == http::Method::GET || req.method() == http::Method::HEAD;
    read.then(|| cookie(headers, SESSION_COOKIE)).flatten()
}

/// The value of cookie `name` in `headers`.
pub(crate) fn cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Whose token `presented` is: 401 naming why when it is no valid one.
pub(crate) async fn role_of(state: &ApiState, presented: &str) -> Result<Role, ApiError> {
    let matches = |t: &str, expected: &str| constant_time_eq(t.as_bytes(), expected.as_bytes());
    let t = presented;
    if matches(t, &state.token) {
        return Ok(Role::Client);
    }
    if state.join_token.as_deref().is_some_and(|j| matches(t, j)) {
        return Ok(Role::Join);
    }
    if state.join_token.is_some() && credential_node(t).is_some() {
        return verify(state, t).await?.map(Role::Node).ok_or_else(|| {
            ApiError::Unauthorized(format!(
                "the credential of node/{} is not valid for this cluster (revoked, or replaced by a newer one)",
                credential_node(t).unwrap_or_default()
            ))
        });
    }
    if let Some(id) = crate::tokens::token_id(t) {
        return crate::tokens::verify(state, t)
            .await?
            .map(Role::Token)
            .ok_or_else(|| {
                ApiError::Unauthorized(format!(
                    "access token {id} is not valid for this cluster (deleted, or mistyped)"
                ))
            });
    }
    Err(ApiError::Unauthorized(
        "the bearer token is not valid for this server".into(),
    ))
}

/// The middleware: finds the request's [`Role`] and refuses what it may not do.
pub(crate) async fn authenticate(
    State(state): State<Arc<ApiState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(presented) = presented(&req) else {
        return ApiError::Unauthorized(
            "missing bearer token; pass --token or SHOAL_TOKEN (shoal up and shoal server write one to DATA_DIR/token)".into(),
        )
        .into_response();
    };
    let role = match role_of(&state, &presented).await {
        Ok(role) => role,
        Err(e) => return e.into_response(),
    };
    if let Err(why) = allowed(&role, &req) {
        return ApiError::Forbidden(why).into_response();
    }
    if let Role::Token(access) = &role {
        req.extensions_mut().insert(access.clone());
    }
    req.extensions_mut().insert(role);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_names_its_node() {
        assert_eq!(credential_node("node.n1.abc"), Some("n1"));
        assert_eq!(credential_node("node.n1."), None);
        assert_eq!(credential_node("node.N_1.abc"), None);
        assert_eq!(credential_node("n1.abc"), None);
        assert_eq!(credential_node("node.n1"), None);
    }
}
