//! The web dashboard at `/ui`: the namespace's apps (status, revision, request rate, p99 and
//! error charts), jobs and their runs, events, nodes, and an app's log followed live.
//!
//! Every asset is compiled into the binary, so it works without internet. The page reads the
//! API as the CLI does — its data is `GET /v1/namespaces/{ns}/dashboard` (server-sent events,
//! see `stream`) and the existing read routes — authenticated by a cookie its login form
//! sets from a token (the client token or an access token; see `auth::SESSION_COOKIE`, which
//! authenticates reads only). Pages forbid inline script, framing and other origins.

pub(crate) mod stream;

use crate::auth::{Role, SESSION_COOKIE, cookie, role_of};
use crate::{ApiError, ApiState};
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;
use std::sync::Arc;

/// How long a login lasts, in seconds.
const SESSION_SECONDS: u64 = 12 * 3600;

/// Whether the API is served over TLS (a login's cookie is then `Secure`).
#[derive(Clone, Copy)]
pub struct Transport {
    /// Served over TLS.
    pub tls: bool,
}

/// The dashboard's routes (no token needed: the page asks for one).
pub(crate) fn router() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/ui", get(page))
        .route("/ui/", get(|| async { Redirect::permanent("/ui") }))
        .route("/ui/login", post(login))
        .route("/ui/logout", post(logout))
        .route(
            "/ui/dashboard.js",
            get(|| asset(DASHBOARD_JS, "text/javascript")),
        )
        .route(
            "/ui/dashboard.css",
            get(|| asset(DASHBOARD_CSS, "text/css")),
        )
}

const DASHBOARD_HTML: &str = include_str!("assets/dashboard.html");
const LOGIN_HTML: &str = include_str!("assets/login.html");
const DASHBOARD_JS: &str = include_str!("assets/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("assets/dashboard.css");

/// What every page and asset is sent with: no inline or foreign script, style or
/// connection, no framing, not cached (a page shows who is logged in).
fn hardened(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // Not `no-referrer`: with it a browser sends `Origin: null` on the login form's post.
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    hardened(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

fn html(status: StatusCode, body: String) -> Response {
    hardened(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
    )
}

/// The login form, saying `problem` when there is one.
fn login_page(status: StatusCode, problem: Option<&str>) -> Response {
    let message = problem
        .map(|p| format!("<p class=\"problem\" id=\"problem\">{}</p>", escape(p)))
        .unwrap_or_default();
    html(status, LOGIN_HTML.replace("{{problem}}", &message))
}

/// `GET /ui`: the dashboard to a browser holding a valid login, else the login form.
async fn page(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let Some(token) = cookie(&headers, SESSION_COOKIE) else {
        return login_page(StatusCode::OK, None);
    };
    match role_of(&state, &token).await.and_then(viewer) {
        Ok(()) => html(StatusCode::OK, DASHBOARD_HTML.to_string()),
        Err(e) => login_page(StatusCode::UNAUTHORIZED, Some(&e.to_string())),
    }
}

/// Whether `role` may open the dashboard: users may, nodes and the join token may not.
fn viewer(role: Role) -> Result<(), ApiError> {
    match role {
        Role::Client | Role::Token(_) => Ok(()),
        Role::Join | Role::Node(_) => Err(ApiError::Forbidden(
            "the dashboard is for users: log in with the client token (DATA_DIR/token) or an access token (shoal create token)".into(),
        )),
    }
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

/// `POST /ui/login`: checks the token and keeps it in the browser as an HttpOnly cookie.
async fn login(
    State(state): State<Arc<ApiState>>,
    transport: Option<Extension<Transport>>,
    headers: HeaderMap,
    Form(form): Form<Login>,
) -> Response {
    if !same_origin(&headers) {
        return login_page(
            StatusCode::FORBIDDEN,
            Some("a login must come from this server's own login form"),
        );
    }
    let token = form.token.trim();
    // A real token is letters, digits and dots; anything else cannot be one (nor a cookie).
    if token.is_empty()
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.')
    {
        return login_page(
            StatusCode::UNAUTHORIZED,
            Some(
                "that is not a Shoal token: paste the client token (DATA_DIR/token) or an access token",
            ),
        );
    }
    if let Err(e) = role_of(&state, token).await.and_then(viewer) {
        return login_page(StatusCode::UNAUTHORIZED, Some(&e.to_string()));
    }
    let secure = match transport {
        Some(Extension(Transport { tls: true })) => "; Secure",
        _ => "",
    };
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{secure}"
    );
    see_dashboard(cookie)
}

/// `POST /ui/logout`: forgets the browser's login.
async fn logout() -> Response {
    see_dashboard(format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
    ))
}

fn see_dashboard(cookie: String) -> Response {
    let mut response = Redirect::to("/ui").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    hardened(response)
}

/// Whether a form post comes from a page of this server: the browser says so
/// (`Sec-Fetch-Site`), or its `Origin` (sent by browsers on every POST) names the host it
/// was sent to, or it has neither (not a browser).
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site == "same-origin" || site == "none";
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, h)| h);
    host.is_some() && origin_host == host
}

/// `text` with HTML's special characters escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_escaped_into_the_login_page() {
        assert_eq!(
            escape("<script>\"x\" & 'y'"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn a_login_posted_from_another_origin_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7000"));
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://127.0.0.1:7000"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&headers));
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_origin(&headers));
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&headers));
    }
}
