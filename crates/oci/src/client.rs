//! One registry's Distribution API: requests with the right credentials, and the challenge
//! flow (`WWW-Authenticate: Basic` or `Bearer realm=…,service=…,scope=…`, the token fetched
//! from the realm with the Basic credentials if there are any, cached, the request retried).

use crate::OciError;
use crate::progress::Upload;
use base64::Engine;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use shoal_api::host_ip;
use shoal_blobs::Fetcher;
use std::sync::Mutex;

/// Credentials for one registry.
#[derive(Clone, Default)]
pub enum Credentials {
    /// None: anonymous pulls (and a Bearer token without credentials, if the registry offers
    /// one).
    #[default]
    Anonymous,
    /// A user name and password (or token), sent as Basic or traded for a Bearer token.
    Basic {
        /// The user name.
        username: String,
        /// The password or access token.
        password: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, (secret))"),
        }
    }
}

/// How requests are authorised, once the registry said.
#[derive(Clone)]
enum Auth {
    None,
    Basic(String),
    Bearer(String),
}

/// A registry: its base URL, the HTTP client and the credentials.
pub struct Registry {
    host: String,
    base: String,
    http: Fetcher,
    credentials: Credentials,
    auth: Mutex<Auth>,
}

/// The most bytes of a token response or an error body read.
const SMALL_BODY: usize = 64 << 10;

impl Registry {
    /// The registry at `host` (`host[:port]`). Loopback registries and those in `insecure`
    /// are spoken to over plain HTTP, every other over HTTPS.
    pub fn new(host: &str, credentials: Credentials, insecure: &[String], http: Fetcher) -> Self {
        let plain = is_loopback(host) || insecure.iter().any(|i| i == host);
        let scheme = if plain { "http" } else { "https" };
        Self {
            host: host.to_string(),
            base: format!("{scheme}://{host}"),
            http,
            credentials,
            auth: Mutex::new(Auth::None),
        }
    }

    /// The registry's `host[:port]`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `http(s)://host[:port]`.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// Sends `method` to `path` (under `/v2/`, or an absolute URL the registry gave) with
    /// `headers` and `body`, answering a credentials challenge once. `scope` is the token
    /// scope to ask for (`repository:NAME:pull`).
    pub(crate) async fn send(
        &self,
        reference: &str,
        method: Method,
        path: &str,
        headers: &HeaderMap,
        body: Bytes,
        scope: &str,
    ) -> Result<http::Response<Incoming>, OciError> {
        self.send_with(reference, method, path, headers, scope, || {
            Upload::quiet(body.clone())
        })
        .await
    }

    /// As [`Registry::send`], with each attempt's body made by `body` (an upload reporting
    /// its progress).
    pub(crate) async fn send_with(
        &self,
        reference: &str,
        method: Method,
        path: &str,
        headers: &HeaderMap,
        scope: &str,
        body: impl Fn() -> Upload,
    ) -> Result<http::Response<Incoming>, OciError> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        // Credentials go to the registry only, never to where it redirects (blob storage).
        let own = url
            .strip_prefix(self.base.as_str())
            .is_some_and(|rest| rest.starts_with('/'));
        let mut challenged = false;
        loop {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(&url)
                .body(body())
                .map_err(|e| transport(reference, e.to_string()))?;
            request.headers_mut().extend(headers.clone());
            let auth = if own {
                self.auth.lock().expect("auth lock").clone()
            } else {
                Auth::None
            };
            let value = match &auth {
                Auth::None => None,
                Auth::Basic(b) => Some(format!("Basic {b}")),
                Auth::Bearer(t) => Some(format!("Bearer {t}")),
            };
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                request.headers_mut().insert(header::AUTHORIZATION, v);
            }
            let response = self
                .http
                .send(request)
                .await
                .map_err(|e| transport(reference, e.to_string()))?;
            if response.status() != StatusCode::UNAUTHORIZED || !own {
                return Ok(response);
            }
            let challenge = response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let detail = error_detail(response).await;
            if challenged {
                return Err(self.unauthorized(reference, detail));
            }
            challenged = true;
            let next = self.answer(reference, &challenge, scope).await?;
            *self.auth.lock().expect("auth lock") = next;
        }
    }

    /// The authorisation a challenge asks for.
    async fn answer(
        &self,
        reference: &str,
        challenge: &str,
        scope: &str,
    ) -> Result<Auth, OciError> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        let basic = match &self.credentials {
            Credentials::Basic { username, password } => Some(
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}")),
            ),
            Credentials::Anonymous => None,
        };
        if scheme.eq_ignore_ascii_case("basic") {
            return basic
                .map(Auth::Basic)
                .ok_or_else(|| self.unauthorized(reference, String::new()));
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(self.unauthorized(reference, format!(": unknown challenge {challenge:?}")));
        }
        let params = challenge_params(params);
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                self.unauthorized(reference, ": a Bearer challenge without a realm".into())
            })?;
        let mut query = Vec::new();
        if let Some((_, service)) = params.iter().find(|(k, _)| k == "service") {
            query.push(format!("service={}", encode(service)));
        }
        let scope = params
            .iter()
            .find(|(k, _)| k == "scope")
            .map_or(scope, |(_, v)| v.as_str());
        query.push(format!("scope={}", encode(scope)));
        let sep = if realm.contains('?') { '&' } else { '?' };
        let url = format!("{realm}{sep}{}", query.join("&"));
        let mut request = Request::get(&url)
            .body(Full::new(Bytes::new()))
            .map_err(|e| transport(reference, format!("token realm {realm}: {e}")))?;
        if let Some(b) = &basic
            && let Ok(v) = HeaderValue::from_str(&format!("Basic {b}"))
        {
            request.headers_mut().insert(header::AUTHORIZATION, v);
        }
        let response = self
            .http
            .send(request)
            .await
            .map_err(|e| transport(reference, format!("token realm: {e}")))?;
        if !response.status().is_success() {
            let status = response.status();
            let detail = error_detail(response).await;
            return Err(self.unauthorized(
                reference,
                format!(": the token realm answered {status}{detail}"),
            ));
        }
        let body = read_limited(response, SMALL_BODY)
            .await
            .map_err(|e| transport(reference, format!("token realm: {e}")))?;
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let token: Token = serde_json::from_slice(&body).map_err(|e| {
            transport(
                reference,
                format!("token realm answered no JSON token: {e}"),
            )
        })?;
        token
            .token
            .or(token.access_token)
            .filter(|t| !t.is_empty())
            .map(Auth::Bearer)
            .ok_or_else(|| self.unauthorized(reference, ": the token realm gave no token".into()))
    }

    fn unauthorized(&self, reference: &str, detail: String) -> OciError {
        OciError::Unauthorized {
            reference: reference.into(),
            registry: self.host.clone(),
            detail,
        }
    }
}

/// Whether `host[:port]` is the loopback interface.
fn is_loopback(host: &str) -> bool {
    let name = shoal_api::normalise_host(host);
    name == "localhost" || host_ip(&name).is_some_and(|ip| ip.is_loopback())
}

pub(crate) fn transport(reference: &str, message: String) -> OciError {
    OciError::Transport {
        reference: reference.into(),
        message,
    }
}

/// `k="v", k2=v2` → pairs.
fn challenge_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.split_once('"') {
                Some((v, n)) => (v.to_string(), n),
                None => (quoted.to_string(), ""),
            },
            None => match after.split_once(',') {
                Some((v, n)) => (v.trim().to_string(), n),
                None => (after.trim().to_string(), ""),
            },
        };
        out.push((key, value));
        rest = next.trim_start_matches([',', ' ']);
    }
    out
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A response's body, at most `limit` bytes.
pub(crate) async fn read_limited(
    response: http::Response<Incoming>,
    limit: usize,
) -> Result<Bytes, String> {
    shoal_blobs::read_body(response, limit)
        .await
        .map_err(|e| match e {
            shoal_blobs::BodyError::TooLarge => format!("more than {limit} bytes"),
            shoal_blobs::BodyError::Failed(message) => message,
        })
}

/// `: MESSAGE` from a Distribution error body (`{"errors":[{"message":…}]}`), or nothing.
pub(crate) async fn error_detail(response: http::Response<Incoming>) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Error>,
    }
    #[derive(serde::Deserialize)]
    struct Error {
        message: String,
    }
    let Ok(body) = read_limited(response, SMALL_BODY).await else {
        return String::new();
    };
    match serde_json::from_slice::<Errors>(&body) {
        Ok(e) if !e.errors.is_empty() => {
            let messages: Vec<_> = e.errors.into_iter().map(|e| e.message).collect();
            format!(": {}", messages.join("; "))
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_and_hosts() {
        assert_eq!(
            challenge_params(
                r#"realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#
            ),
            [
                ("realm".into(), "https://auth.example/token".into()),
                ("service".into(), "registry.example".into()),
                ("scope".into(), "repository:a/b:pull".into())
            ]
        );
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert!(
            is_loopback("127.0.0.1:5000")
                && is_loopback("localhost:1")
                && is_loopback("[::1]:5000")
        );
        assert!(!is_loopback("ghcr.io") && !is_loopback("10.0.0.1:5000"));
    }
}
