//! Outbound HTTP: the allow-list check and a sender that dials only the addresses it checked.
//!
//! # Guarantees
//! - The decision uses the request's own URL (scheme, host, port) — never a Host header.
//! - A host name is resolved once; every address must pass, and the connection is made to those
//!   addresses only, so a DNS answer cannot change between the check and the connect.
//! - Internal addresses (loopback, private, link-local and metadata, ...) are refused unless an
//!   entry names that address exactly, whatever name led there.
//! - Redirects are not followed here: each hop is a new request from the guest, checked anew.

use crate::capability::{Capability, GrantError, OpenError};
use crate::internal::{Callee, LocalApps};
use http::Uri;
use http_body_util::BodyExt;
use shoal_api::capabilities::outbound::{self, LOCALHOST};
use shoal_api::{
    Destination, ObjectRef, OutboundRule, WorkloadSpec, default_port, host_ip, is_internal,
    normalise_host,
};
use shoal_runtime::{Grant, Hop, InstanceBuilder, OutgoingHttp, Sent, Workload};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

const DNS_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a destination was refused; the text goes into the app's log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// The app has no outbound capability at all.
    #[error("no outbound capability is granted (spec.capabilities.outbound is empty)")]
    NotGranted,
    /// The URL has no usable scheme or host.
    #[error("the URL {0} has no http(s) scheme or no host")]
    BadUri(String),
    /// No entry allows the destination.
    #[error("{0} is not in spec.capabilities.outbound")]
    NotAllowed(String),
    /// An app called in memory is not granted by an entry naming it or its namespace.
    #[error(
        "{0} is called in memory; only an entry naming it (or *.NAMESPACE.shoal.internal, for Spin *.spin.internal) allows it"
    )]
    AppNotNamed(String),
    /// An app of another namespace, called in memory.
    #[error("{0} is in another namespace; apps are called in memory only within their own")]
    OtherNamespace(String),
    /// No such app on this node.
    #[error("{0} is not served on this node")]
    NoSuchApp(String),
    /// One hop too many in a chain of in-memory calls.
    #[error("it would be hop {0} of a chain of calls between apps; at most {max} (a loop?)", max = shoal_runtime::MAX_DEPTH)]
    TooDeep(u32),
    /// The destination is or resolves to an internal address no entry names exactly.
    #[error(
        "{host} resolves to internal address {ip}; only an entry naming {ip} exactly allows it"
    )]
    Internal {
        /// The host the guest asked for.
        host: String,
        /// The internal address.
        ip: IpAddr,
    },
}

/// The outbound HTTP capability: the node's TLS client settings, and each deployment's
/// allow-list. Every deployment gets a grant, so that a guest without one hears a refusal
/// and the app's log says why.
pub struct Outbound {
    tls: Arc<rustls::ClientConfig>,
    apps: Arc<dyn LocalApps>,
}

impl Outbound {
    /// The capability, with the TLS roots every HTTPS request is checked against, calling
    /// `apps` in memory (see [`crate::internal`]).
    ///
    /// # Errors
    /// The TLS configuration cannot be built.
    pub fn new(apps: Arc<dyn LocalApps>) -> Result<Self, OpenError> {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| OpenError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            tls: Arc::new(tls),
            apps,
        })
    }
}

#[async_trait::async_trait]
impl Capability for Outbound {
    fn name(&self) -> &'static str {
        outbound::NAME
    }

    async fn grant(
        &self,
        owner: &ObjectRef,
        spec: WorkloadSpec<'_>,
    ) -> Result<Option<Arc<dyn Grant>>, GrantError> {
        let rules = outbound::rules(spec).map_err(|e| GrantError {
            field: e.path,
            message: e.message,
        })?;
        let policy = OutboundPolicy::new(rules, self.tls.clone()).calling(
            self.apps.clone(),
            &owner.namespace,
            &owner.name,
        );
        Ok(Some(Arc::new(Allow(Arc::new(Sender(Arc::new(policy)))))))
    }
}

/// The grant: every instance sends its outgoing HTTP through the deployment's policy.
struct Allow(Arc<Sender>);

impl Grant for Allow {
    fn prepare(&self, instance: &mut InstanceBuilder<'_>) {
        instance.send_outgoing_http_with(self.0.clone());
    }
}

/// Sends through a policy, recording each refusal in the workload's log.
struct Sender(Arc<OutboundPolicy>);

impl OutgoingHttp for Sender {
    fn send(
        &self,
        workload: Arc<Workload>,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Box<dyn Future<Output = Result<Sent, Error>> + Send> {
        let uri = request.uri().to_string();
        let denied =
            move |d: &Denial| workload.event(&format!("outbound HTTP to {uri} denied: {d}"));
        Box::new(self.0.clone().send(request, options, denied))
    }
}

/// One deployment's outbound allow-list (empty: nothing is allowed).
pub struct OutboundPolicy {
    rules: Vec<OutboundRule>,
    tls: Arc<rustls::ClientConfig>,
    /// The apps it may call in memory, and the caller's namespace and name.
    apps: Arc<dyn LocalApps>,
    caller: (String, String),
}

impl OutboundPolicy {
    /// The policy allowing `rules`, checking HTTPS servers against `tls`; no app is called
    /// in memory.
    pub fn new(rules: Vec<OutboundRule>, tls: Arc<rustls::ClientConfig>) -> Self {
        Self {
            rules,
            tls,
            apps: Arc::new(crate::internal::NoApps),
            caller: (String::new(), String::new()),
        }
    }

    /// This policy for app `name` of `namespace`, whose calls to apps of it go to `apps`.
    #[must_use]
    pub fn calling(mut self, apps: Arc<dyn LocalApps>, namespace: &str, name: &str) -> Self {
        self.apps = apps;
        self.caller = (namespace.to_string(), name.to_string());
        self
    }

    /// Checks `uri` and resolves it to the addresses that may be dialled.
    ///
    /// # Errors
    /// A [`Denial`] saying why, or a DNS failure as a wasi:http error.
    pub async fn vet(&self, uri: &Uri) -> Result<(Destination, Vec<SocketAddr>), VetError> {
        let (dest, allowing) = self.check(uri)?;
        let addrs = resolve(&dest, &allowing).await?;
        Ok((dest, addrs))
    }

    /// The destination of `uri` and the entries that allow it, or the denial.
    fn check(&self, uri: &Uri) -> Result<(Destination, Vec<&OutboundRule>), VetError> {
        if self.rules.is_empty() {
            return Err(VetError::Denied(Denial::NotGranted));
        }
        let bad = || VetError::Denied(Denial::BadUri(uri.to_string()));
        let scheme = uri
            .scheme_str()
            .map(str::to_ascii_lowercase)
            .ok_or_else(bad)?;
        let default = default_port(&scheme).ok_or_else(bad)?;
        let host = normalise_host(uri.host().filter(|h| !h.is_empty()).ok_or_else(bad)?);
        let dest = Destination {
            scheme,
            port: uri.port_u16().unwrap_or(default),
            host,
        };
        // Only an entry that allows this destination can exempt an internal address: naming
        // one internal address in one entry opens no other entry's scheme or port to it.
        let allowing: Vec<&OutboundRule> = self.rules.iter().filter(|r| r.allows(&dest)).collect();
        if allowing.is_empty() {
            let shown = format!("{}://{}:{}", dest.scheme, dest.host, dest.port);
            return Err(VetError::Denied(Denial::NotAllowed(shown)));
        }
        Ok((dest, allowing))
    }

    /// Sends `req` if the policy allows it, dialling only vetted addresses.
    ///
    /// # Errors
    /// `HttpRequestDenied` when refused (after logging through `on_denied`), or the transport
    /// error as a wasi:http error code.
    pub async fn send(
        self: Arc<Self>,
        mut req: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        on_denied: impl FnOnce(&Denial),
    ) -> Result<(http::Response<WasiBody>, ConnectionTask), Error> {
        let checked = match self.check(req.uri()) {
            Ok((dest, allowing)) => {
                if let Some(callee) = crate::internal::target(&dest.host) {
                    let granted = allowing.iter().any(|r| crate::internal::grants(r, &dest));
                    return self.call(req, callee, granted, on_denied).await;
                }
                resolve(&dest, &allowing).await.map(|addrs| (dest, addrs))
            }
            Err(e) => Err(e),
        };
        let (dest, addrs) = match checked {
            Ok(v) => v,
            Err(VetError::Denied(d)) => {
                on_denied(&d);
                return Err(Error::HttpRequestDenied);
            }
            Err(VetError::Failed(e)) => return Err(e),
        };
        let connect_timeout = options
            .and_then(|o| o.connect_timeout)
            .unwrap_or(CONNECT_TIMEOUT);
        let first_byte_timeout = options
            .and_then(|o| o.first_byte_timeout)
            .unwrap_or(FIRST_BYTE_TIMEOUT);
        let tcp = connect(&addrs, connect_timeout).await?;
        let io: Box<dyn Io> = if dest.scheme == "https" {
            let name = match host_ip(&dest.host) {
                Some(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
                None => rustls::pki_types::ServerName::try_from(dest.host.clone())
                    .map_err(|_| Error::HttpRequestUriInvalid)?,
            };
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone());
            Box::new(tls.connect(name, tcp).await.map_err(Error::Tls)?)
        } else {
            Box::new(tcp)
        };
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(io))
                .await
                .map_err(Error::from)?;
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        *req.uri_mut() = Uri::builder()
            .path_and_query(path)
            .build()
            .map_err(|_| Error::HttpRequestUriInvalid)?;

        // Drive the connection while waiting for the response head; afterwards the caller does.
        // A server that answers and closes at once finishes the connection first: the response
        // is then already buffered in `send`.
        let mut conn = Box::pin(conn);
        let send = sender.send_request(req);
        tokio::pin!(send);
        let mut conn_done = false;
        let response = tokio::time::timeout(first_byte_timeout, async {
            tokio::select! {
                biased;
                r = &mut send => r.map_err(Error::from),
                r = &mut conn => {
                    conn_done = true;
                    r.map_err(Error::from)?;
                    (&mut send).await.map_err(Error::from)
                }
            }
        })
        .await
        .map_err(|_| Error::ConnectionReadTimeout)??;
        let response = response.map(|body| body.map_err(Error::from).boxed_unsync());
        let task: ConnectionTask = if conn_done {
            Box::new(std::future::ready(Ok(())))
        } else {
            Box::new(async move { conn.await.map_err(Error::from) })
        };
        Ok((response, task))
    }

    /// Sends `req` to `callee` in memory (see [`crate::internal`]), if an entry naming it
    /// `granted` it.
    async fn call(
        &self,
        req: http::Request<WasiBody>,
        callee: Callee<'_>,
        granted: bool,
        on_denied: impl FnOnce(&Denial),
    ) -> Result<(http::Response<WasiBody>, ConnectionTask), Error> {
        let depth = req.extensions().get::<Hop>().map_or(1, |h| h.depth);
        let refused = match callee {
            _ if !granted => Some((
                Denial::AppNotNamed(callee.to_string()),
                Error::HttpRequestDenied,
            )),
            Callee::App { namespace, .. } if namespace != self.caller.0 => Some((
                Denial::OtherNamespace(callee.to_string()),
                Error::HttpRequestDenied,
            )),
            _ if depth > shoal_runtime::MAX_DEPTH => {
                Some((Denial::TooDeep(depth), Error::LoopDetected))
            }
            _ => None,
        };
        if let Some((why, error)) = refused {
            on_denied(&why);
            return Err(error);
        }
        let (namespace, caller) = (&self.caller.0, &self.caller.1);
        let Some(answer) = self.apps.call(namespace, caller, callee, req) else {
            on_denied(&Denial::NoSuchApp(callee.to_string()));
            return Err(Error::DestinationNotFound);
        };
        let done: ConnectionTask = Box::new(std::future::ready(Ok(())));
        Ok((answer.await, done))
    }
}

/// The addresses `dest` may be dialled at: each one allowed, an internal one only when one of
/// the `allowing` entries names it.
async fn resolve(
    dest: &Destination,
    allowing: &[&OutboundRule],
) -> Result<Vec<SocketAddr>, VetError> {
    let addrs: Vec<SocketAddr> = match host_ip(&dest.host) {
        Some(ip) => vec![SocketAddr::new(ip, dest.port)],
        None if dest.host == LOCALHOST => [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]
            .into_iter()
            .map(|ip: IpAddr| SocketAddr::new(ip, dest.port))
            .collect(),
        None => match tokio::time::timeout(
            DNS_TIMEOUT,
            tokio::net::lookup_host((dest.host.as_str(), dest.port)),
        )
        .await
        {
            Ok(Ok(addrs)) => addrs.collect(),
            Ok(Err(e)) => {
                return Err(VetError::Failed(Error::DnsError {
                    rcode: Some(e.to_string()),
                    info_code: None,
                }));
            }
            Err(_) => return Err(VetError::Failed(Error::DnsTimeout)),
        },
    };
    if addrs.is_empty() {
        return Err(VetError::Failed(Error::DnsError {
            rcode: Some("no addresses".into()),
            info_code: None,
        }));
    }
    for addr in &addrs {
        let ip = addr.ip();
        if is_internal(ip) && !allowing.iter().any(|r| r.names_ip(ip)) {
            return Err(VetError::Denied(Denial::Internal {
                host: dest.host.clone(),
                ip,
            }));
        }
    }
    Ok(addrs)
}

/// The rest of a connection's life, driven by the caller after the response head arrived.
pub type ConnectionTask = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// Why [`OutboundPolicy::vet`] did not clear a request.
#[derive(Debug)]
pub enum VetError {
    /// Refused by policy.
    Denied(Denial),
    /// The destination could not be resolved.
    Failed(Error),
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Io for T {}

async fn connect(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, Error> {
    let mut last = Error::ConnectionRefused;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = Error::Connect(e),
            Err(_) => last = Error::ConnectionTimeout,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OutboundPolicy {
        let rules = entries
            .iter()
            .map(|e| OutboundRule::parse(e).unwrap())
            .collect();
        OutboundPolicy::new(
            rules,
            Outbound::new(Arc::new(crate::internal::NoApps))
                .unwrap()
                .tls,
        )
    }

    async fn vet(p: &OutboundPolicy, url: &str) -> Result<Vec<SocketAddr>, String> {
        match p.vet(&url.parse().unwrap()).await {
            Ok((_, addrs)) => Ok(addrs),
            Err(VetError::Denied(d)) => Err(d.to_string()),
            Err(VetError::Failed(e)) => Err(format!("failed: {e}")),
        }
    }

    #[tokio::test]
    async fn decisions() {
        let p = policy(&[
            "http://127.0.0.1:8080",
            "https://93.184.216.34",
            "http://[::1]:9000",
        ]);
        let cases: &[(&str, Result<(), &str>)] = &[
            ("http://127.0.0.1:8080/x", Ok(())),
            (
                "http://127.0.0.1:8081/",
                Err("http://127.0.0.1:8081 is not in spec.capabilities.outbound"),
            ),
            (
                "https://127.0.0.1:8080/",
                Err("https://127.0.0.1:8080 is not in spec.capabilities.outbound"),
            ),
            ("http://[::1]:9000/", Ok(())),
            (
                "http://0x7f000001:8080/",
                Err("http://0x7f000001:8080 is not in spec.capabilities.outbound"),
            ),
            ("https://93.184.216.34/", Ok(())),
            ("http://user@127.0.0.1:8080/", Ok(())),
            (
                "http://127.0.0.1:8080@evil.example:80/",
                Err("http://evil.example:80 is not in spec.capabilities.outbound"),
            ),
        ];
        for (url, want) in cases {
            let got = vet(&p, url).await.map(|_| ());
            assert_eq!(got, want.map_err(str::to_string), "{url}");
        }
        assert_eq!(
            vet(&policy(&[]), "http://127.0.0.1:1/").await.unwrap_err(),
            Denial::NotGranted.to_string()
        );
    }

    #[tokio::test]
    async fn an_internal_address_is_exempt_only_under_the_entry_that_names_it() {
        let p = policy(&[
            "http://127.0.0.1:8080",
            "https://*:*",
            "http://localhost:3000",
            "http://*:*",
        ]);
        assert!(vet(&p, "http://127.0.0.1:8080/").await.is_ok());
        assert!(vet(&p, "http://localhost:3000/").await.is_ok());
        for url in [
            "https://127.0.0.1:8080/",
            "https://127.0.0.1:22/",
            "http://127.0.0.1:22/",
            "https://localhost:3000/",
            "http://localhost:22/",
            "http://[::1]:8080/",
        ] {
            let err = vet(&p, url).await.unwrap_err();
            assert!(err.contains("internal address"), "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn calls_in_memory_stay_in_the_namespace_and_end_at_the_depth_limit() {
        let entries = ["http://web.a.shoal.internal", "http://web.b.shoal.internal"];
        let p = Arc::new(policy(&entries).calling(Arc::new(crate::internal::NoApps), "a", "x"));
        let send = |url: &str, depth: u32| {
            let body = http_body_util::Empty::new().map_err(|never| match never {});
            let mut req = http::Request::get(url).body(body.boxed_unsync()).unwrap();
            req.extensions_mut().insert(Hop {
                depth,
                deadline: None,
                caller: "app/x".into(),
                via: None,
            });
            let mut why = None;
            let p = p.clone();
            async move {
                let got = p.send(req, None, |d| why = Some(d.clone())).await;
                (got.err().map(|e| e.to_string()), why)
            }
        };
        let other = send("http://web.b.shoal.internal/", 1).await;
        assert_eq!(other.0, Some(Error::HttpRequestDenied.to_string()));
        let callee = "app/web of namespace b".to_string();
        assert_eq!(other.1, Some(Denial::OtherNamespace(callee)));
        let deep = send("http://web.a.shoal.internal/", 11).await;
        assert_eq!(deep.0, Some(Error::LoopDetected.to_string()));
        assert_eq!(deep.1, Some(Denial::TooDeep(11)));
        let last = send("http://web.a.shoal.internal/", 10).await;
        assert_eq!(last.0, Some(Error::DestinationNotFound.to_string()));
        let callee = "app/web of namespace a".to_string();
        assert_eq!(last.1, Some(Denial::NoSuchApp(callee)));
    }

    #[tokio::test]
    async fn names_that_resolve_inside_are_refused_but_named_localhost_is_loopback() {
        let p = policy(&["http://*:8080"]);
        let err = vet(&p, "http://localhost:8080/").await.unwrap_err();
        assert!(
            err.starts_with("localhost resolves to internal address "),
            "{err}"
        );
        let p = policy(&["http://localhost:8080"]);
        let (_, addrs) = p
            .vet(&"http://localhost:8080/".parse().unwrap())
            .await
            .unwrap();
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 8080),
            "{addrs:?}"
        );
    }
}
