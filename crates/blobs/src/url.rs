//! A blob fetched by URL, as Spin fetches a `source = { url, digest }`: HTTP or HTTPS (rustls,
//! with Mozilla's root certificates and any more in a PEM file, `SSL_CERT_FILE` by convention),
//! redirects followed, bounded in size and time, and the bytes checked against the digest
//! that names them before anyone sees them.

use http::{HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use shoal_api::Digest;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Redirects followed before giving up (a release download is usually one or two).
const MAX_REDIRECTS: usize = 10;
/// How long a connection (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a whole fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(600);

/// Why a fetch gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL is not `http://` or `https://` with a host.
    #[error("{0}: not an http:// or https:// URL")]
    BadUrl(String),
    /// The extra root certificates could not be read.
    #[error("root certificates {path}: {message}")]
    Roots {
        /// The PEM file.
        path: String,
        /// What was wrong with it.
        message: String,
    },
    /// Connecting, TLS or HTTP failed.
    #[error("cannot fetch {url}: {message}")]
    Transport {
        /// The URL being fetched.
        url: String,
        /// What failed.
        message: String,
    },
    /// The server answered something other than success or a redirect.
    #[error("{url} answered {status}")]
    Status {
        /// The URL being fetched.
        url: String,
        /// Its status.
        status: StatusCode,
    },
    /// Too many redirects, or one without a usable `Location`.
    #[error("{url}: {message}")]
    Redirect {
        /// The URL that redirected.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The body is larger than the limit.
    #[error("{url} is larger than {max} bytes")]
    TooLarge {
        /// The URL being fetched.
        url: String,
        /// The limit.
        max: u64,
    },
    /// The bytes are not the ones the digest names.
    #[error("invalid content digest; expected {expected}, downloaded {actual} from {url}")]
    Digest {
        /// The URL fetched.
        url: String,
        /// The digest that names the blob.
        expected: Digest,
        /// The digest of what came.
        actual: Digest,
    },
    /// The fetch took longer than its time limit.
    #[error("{url}: no complete answer within {0:?}", FETCH_TIMEOUT)]
    Timeout {
        /// The URL being fetched.
        url: String,
    },
}

/// Fetches blobs by URL.
#[derive(Clone)]
pub struct Fetcher {
    tls: Arc<rustls::ClientConfig>,
    max_bytes: u64,
}

impl Fetcher {
    /// A fetcher trusting Mozilla's roots and those in `extra_roots` (a PEM file), refusing
    /// bodies over `max_bytes`.
    ///
    /// # Errors
    /// [`FetchError::Roots`] if `extra_roots` cannot be read or holds no certificate.
    pub fn new(extra_roots: Option<&Path>, max_bytes: u64) -> Result<Self, FetchError> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = extra_roots {
            let fail = |message: String| FetchError::Roots {
                path: path.display().to_string(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
            let mut found = 0;
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| fail(format!("{e:?}")))?;
                roots.add(cert).map_err(|e| fail(e.to_string()))?;
                found += 1;
            }
            if found == 0 {
                return Err(fail("holds no PEM certificate".into()));
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Roots {
            path: String::new(),
            message: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            tls: Arc::new(tls),
            max_bytes,
        })
    }

    /// A fetcher trusting Mozilla's roots and those in the PEM file `SSL_CERT_FILE` names, if
    /// it is set (the convention OpenSSL and most HTTP clients follow).
    ///
    /// # Errors
    /// As [`Fetcher::new`].
    pub fn from_env(max_bytes: u64) -> Result<Self, FetchError> {
        let roots = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
        Self::new(roots.as_deref(), max_bytes)
    }

    /// The bytes at `url`, if they are what `digest` names.
    ///
    /// # Errors
    /// A [`FetchError`] naming the URL.
    pub async fn fetch(&self, url: &str, digest: &Digest) -> Result<Vec<u8>, FetchError> {
        let bytes = tokio::time::timeout(FETCH_TIMEOUT, self.get(url))
            .await
            .map_err(|_| FetchError::Timeout { url: url.into() })??;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(FetchError::Digest {
                url: url.into(),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// GET `url`, following redirects.
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let mut uri: Uri = url.parse().map_err(|_| FetchError::BadUrl(url.into()))?;
        for _ in 0..=MAX_REDIRECTS {
            let shown = uri.to_string();
            let response = self.request(&uri).await?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| FetchError::Redirect {
                        url: shown.clone(),
                        message: format!("{status} without a Location"),
                    })?;
                uri = resolve(&uri, location).ok_or_else(|| FetchError::Redirect {
                    url: shown.clone(),
                    message: format!("redirects to an unusable location {location:?}"),
                })?;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status { url: shown, status });
            }
            let too_large = || FetchError::TooLarge {
                url: shown.clone(),
                max: self.max_bytes,
            };
            let declared = response
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if declared.is_some_and(|n| n > self.max_bytes) {
                return Err(too_large());
            }
            let limit = usize::try_from(self.max_bytes).unwrap_or(usize::MAX);
            let body = read_body(response, limit).await.map_err(|e| match e {
                BodyError::TooLarge => too_large(),
                BodyError::Failed(message) => FetchError::Transport {
                    url: shown.clone(),
                    message,
                },
            })?;
            return Ok(body.to_vec());
        }
        Err(FetchError::Redirect {
            url: url.into(),
            message: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    /// One GET of `uri` on a connection of its own.
    async fn request(&self, uri: &Uri) -> Result<http::Response<Incoming>, FetchError> {
        let request = Request::get(uri.clone())
            .body(Full::new(Bytes::new()))
            .map_err(|_| FetchError::BadUrl(uri.to_string()))?;
        self.send(request).await
    }

    /// Sends `request` (its URI absolute) on a connection of its own, as it is: no redirect
    /// followed, no body limit (the caller bounds what it reads). `Host` and `User-Agent` are
    /// set when missing. What protocols to allow is the caller's policy.
    ///
    /// # Errors
    /// [`FetchError::BadUrl`] for a URI that is not absolute `http(s)`, else
    /// [`FetchError::Transport`].
    pub async fn send<B>(
        &self,
        mut request: Request<B>,
    ) -> Result<http::Response<Incoming>, FetchError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let uri = request.uri().clone();
        let url = uri.to_string();
        let fail = |message: String| FetchError::Transport {
            url: url.clone(),
            message,
        };
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(FetchError::BadUrl(url.clone())),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| FetchError::BadUrl(url.clone()))?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let connect = async {
            let tcp = TcpStream::connect((bare, port))
                .await
                .map_err(|e| fail(e.to_string()))?;
            let io: Box<dyn Io> = if https {
                let name = rustls::pki_types::ServerName::try_from(bare.to_string())
                    .map_err(|e| fail(e.to_string()))?;
                let tls = tokio_rustls::TlsConnector::from(self.tls.clone());
                Box::new(
                    tls.connect(name, tcp)
                        .await
                        .map_err(|e| fail(format!("TLS: {e}")))?,
                )
            } else {
                Box::new(tcp)
            };
            Ok::<_, FetchError>(io)
        };
        let io = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| fail(format!("no connection within {CONNECT_TIMEOUT:?}")))??;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(conn);
        let authority = uri.authority().map_or(host, |a| a.as_str());
        let headers = request.headers_mut();
        if !headers.contains_key(header::HOST) {
            let value = HeaderValue::from_str(authority).map_err(|e| fail(e.to_string()))?;
            headers.insert(header::HOST, value);
        }
        headers
            .entry(header::USER_AGENT)
            .or_insert(HeaderValue::from_static(concat!(
                "shoal/",
                env!("CARGO_PKG_VERSION")
            )));
        // HTTP/1.1 sends the path; the authority went into `Host`.
        let origin = uri.path_and_query().map_or("/", |p| p.as_str());
        *request.uri_mut() = origin
            .parse()
            .map_err(|_| FetchError::BadUrl(url.clone()))?;
        sender
            .send_request(request)
            .await
            .map_err(|e| fail(e.to_string()))
    }
}

/// Why [`read_body`] gave no body.
#[derive(Debug)]
pub enum BodyError {
    /// It is longer than the limit.
    TooLarge,
    /// The connection failed while it was read.
    Failed(String),
}

/// A response's body, at most `limit` bytes; reading stops at the first byte over it.
///
/// # Errors
/// [`BodyError`].
pub async fn read_body(
    response: http::Response<Incoming>,
    limit: usize,
) -> Result<Bytes, BodyError> {
    Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                BodyError::TooLarge
            } else {
                BodyError::Failed(e.to_string())
            }
        })
}

/// A connection, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A redirect's `location` (absolute, or an absolute path) relative to `base`.
pub fn resolve(base: &Uri, location: &str) -> Option<Uri> {
    let uri: Uri = location.parse().ok()?;
    if uri.scheme().is_some() {
        return Some(uri);
    }
    if !location.starts_with('/') {
        return None;
    }
    Uri::builder()
        .scheme(base.scheme()?.clone())
        .authority(base.authority()?.clone())
        .path_and_query(location)
        .build()
        .ok()
}

#[cfg(test)]
mod tests;
