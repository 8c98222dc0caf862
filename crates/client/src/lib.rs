//! A typed client for Shoal's HTTP API, used by the CLI and the end-to-end tests.

mod remote_store;
mod tenants;

pub use remote_store::RemoteStore;

use futures::StreamExt;
use serde::de::DeserializeOwned;
use shoal_api::{App, AppStats, ApplyResponse, Digest, Event, Job, Node, Revision};
use shoal_store::http::root_cause;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error; `message` is the server's, written for users.
    #[error("{message}")]
    Api {
        /// HTTP status code.
        status: u16,
        /// The server's explanation.
        message: String,
    },
    /// The server could not be reached.
    #[error(
        "cannot reach the Shoal API at {server}: {reason}; is `shoal up` running there? (set --server or SHOAL_SERVER)"
    )]
    Unreachable {
        /// The base URL tried.
        server: String,
        /// The transport error.
        reason: String,
    },
    /// The server's certificate is not one this client trusts.
    #[error(
        "the Shoal API at {server} presented a certificate this client does not trust ({reason}); pass the CA that issued it with --ca FILE (or SHOAL_CA): `shoal up` and `shoal server` write theirs to DATA_DIR/tls/ca.crt"
    )]
    Untrusted {
        /// The base URL tried.
        server: String,
        /// What the verification said.
        reason: String,
    },
    /// The server answered with something that is not the expected JSON.
    #[error("unexpected answer from {server}: {reason}")]
    Protocol {
        /// The base URL.
        server: String,
        /// What did not decode.
        reason: String,
    },
}

impl ClientError {
    /// True for a 404 answer.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Api { status: 404, .. })
    }
}

/// Whose log to read.
#[derive(Debug, Clone)]
pub enum LogSource {
    /// An app's log.
    App(String),
    /// One run of a job (the latest when `run` is `None`).
    Job {
        /// The job.
        name: String,
        /// The run number.
        run: Option<u64>,
    },
}

/// The credentials of a registry (`HOST[:PORT]`), as the value of
/// [`shoal_api::REGISTRY_AUTH_HEADER`].
pub type RegistryAuth = std::sync::Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A connection to one Shoal API server.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    registry_auth: Option<RegistryAuth>,
}

impl Client {
    /// A client for the server at `base` (e.g. `https://127.0.0.1:7070`), sending `token`,
    /// verifying an HTTPS server against the system's roots.
    pub fn new(base: &str, token: Option<String>) -> Self {
        Self::with_tls(base, token, &shoal_tls::ClientTls::system())
    }

    /// A client for the server at `base`, sending `token`, verifying an HTTPS server as
    /// `tls` says.
    pub fn with_tls(base: &str, token: Option<String>, tls: &shoal_tls::ClientTls) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::builder()
                .tls_backend_preconfigured(tls.config())
                .build()
                .expect("an HTTP client with rustls builds"),
            registry_auth: None,
        }
    }

    /// Sends, with an apply whose component is an OCI reference, the credentials `auth` gives
    /// for its registry, for the server's pull.
    pub fn with_registry_auth(mut self, auth: RegistryAuth) -> Self {
        self.registry_auth = Some(auth);
        self
    }

    /// `req` with the credentials of `component`'s registry, if it names one and has them.
    fn with_pull_credentials(
        &self,
        req: reqwest::RequestBuilder,
        component: &shoal_api::ComponentRef,
    ) -> reqwest::RequestBuilder {
        let shoal_api::ComponentRef::Oci(r) = component else {
            return req;
        };
        match self
            .registry_auth
            .as_ref()
            .and_then(|auth| auth(&r.registry))
        {
            Some(value) => req.header(shoal_api::REGISTRY_AUTH_HEADER, value),
            None => req,
        }
    }

    /// The server's base URL.
    pub fn server(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// What a transport error means: an untrusted certificate, or no answer.
    fn transport(&self, e: &reqwest::Error) -> ClientError {
        let reason = root_cause(e);
        let server = self.base.clone();
        if reason.contains("certificate") {
            return ClientError::Untrusted { server, reason };
        }
        let reason = match self.base.starts_with("http://") {
            // A TLS server closes on a plain request without a word.
            true => format!(
                "{reason} (an API served over HTTPS closes plain HTTP connections: is it https://?)"
            ),
            false => reason,
        };
        ClientError::Unreachable { server, reason }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let resp = req.send().await.map_err(|e| self.transport(&e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| format!("HTTP {status}: {}", text.trim()));
        Err(ClientError::Api { status, message })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let resp = self.send(req).await?;
        resp.json().await.map_err(|e| ClientError::Protocol {
            server: self.base.clone(),
            reason: e.to_string(),
        })
    }

    /// The largest upload the server accepts, in bytes.
    pub async fn max_upload(&self) -> Result<u64, ClientError> {
        let v: serde_json::Value = self
            .json(self.request(reqwest::Method::GET, "/v1/info"))
            .await?;
        v.get("maxUpload")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| ClientError::Protocol {
                server: self.base.clone(),
                reason: "info answer has no maxUpload".into(),
            })
    }

    /// Uploads component bytes; returns their `sha256:` digest.
    pub async fn upload_blob(&self, bytes: Vec<u8>) -> Result<Digest, ClientError> {
        self.upload_blob_reported(bytes, |_| {}).await
    }

    /// Uploads bytes as [`Client::upload_blob`] does, telling `sent` the size of each chunk
    /// as the connection takes it.
    pub async fn upload_blob_reported(
        &self,
        bytes: Vec<u8>,
        sent: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<Digest, ClientError> {
        const CHUNK: usize = 64 << 10;
        let len = bytes.len() as u64;
        let bytes = bytes::Bytes::from(bytes);
        let chunks: Vec<bytes::Bytes> = (0..bytes.len())
            .step_by(CHUNK)
            .map(|at| bytes.slice(at..bytes.len().min(at + CHUNK)))
            .collect();
        let stream = futures::stream::iter(chunks).map(move |c| {
            sent(c.len() as u64);
            Ok::<_, std::io::Error>(c)
        });
        let req = self
            .request(reqwest::Method::POST, "/v1/blobs")
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(stream));
        let v: serde_json::Value = self.json(req).await?;
        v.get("digest")
            .and_then(|d| d.as_str())
            .and_then(|d| Digest::parse(d).ok())
            .ok_or_else(|| ClientError::Protocol {
                server: self.base.clone(),
                reason: "upload answer has no digest".into(),
            })
    }

    /// Has the server pull `req`'s artifact (with the credentials of its registry), telling
    /// `on` of each progress event; returns the last event: what was pulled.
    ///
    /// # Errors
    /// The server refused the request, or reported the pull failed
    /// ([`ClientError::Api`] with its message), or the stream broke off.
    pub async fn pull(
        &self,
        req: &shoal_api::pull::PullRequest,
        mut on: impl FnMut(&shoal_api::pull::PullEvent),
    ) -> Result<shoal_api::pull::PullEvent, ClientError> {
        use shoal_api::pull::PullEvent;
        let component = shoal_api::ComponentRef::parse(&req.reference)
            .unwrap_or_else(|_| shoal_api::ComponentRef::Path(req.reference.clone()));
        let http = self.with_pull_credentials(
            self.request(reqwest::Method::POST, "/v1/pull").json(req),
            &component,
        );
        let mut resp = self.send(http).await?;
        let broken = |reason: String| ClientError::Protocol {
            server: self.base.clone(),
            reason,
        };
        let mut pending = Vec::new();
        loop {
            let chunk = resp.chunk().await.map_err(|e| self.transport(&e))?;
            let Some(chunk) = chunk else {
                return Err(broken("the pull's answer ended before its result".into()));
            };
            pending.extend_from_slice(&chunk);
            while let Some(at) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=at).collect();
                let event: PullEvent = serde_json::from_slice(&line)
                    .map_err(|e| broken(format!("a pull event is not JSON: {e}")))?;
                match event {
                    PullEvent::Error { message } => {
                        return Err(ClientError::Api {
                            status: 400,
                            message,
                        });
                    }
                    PullEvent::Component { .. } | PullEvent::Spin { .. } => return Ok(event),
                    progress => on(&progress),
                }
            }
        }
    }

    /// The bytes of blob `digest`.
    pub async fn download_blob(&self, digest: &Digest) -> Result<Vec<u8>, ClientError> {
        let resp = self
            .send(self.request(reqwest::Method::GET, &format!("/v1/blobs/{digest}")))
            .await?;
        let bytes = resp.bytes().await.map_err(|e| self.transport(&e))?;
        Ok(bytes.to_vec())
    }

    /// Whether the server already has the blob `digest`.
    pub async fn has_blob(&self, digest: &Digest) -> Result<bool, ClientError> {
        match self
            .send(self.request(reqwest::Method::HEAD, &format!("/v1/blobs/{digest}")))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates, updates or confirms an App.
    pub async fn apply_app(&self, app: &App) -> Result<ApplyResponse, ClientError> {
        let path = format!(
            "/v1/namespaces/{}/apps/{}",
            app.metadata.namespace, app.metadata.name
        );
        let req = self.request(reqwest::Method::PUT, &path).json(app);
        self.json(self.with_pull_credentials(req, &app.spec.component))
            .await
    }

    /// Applies `app`, whose spec is revision `revision`'s again (`shoal rollout undo`): the
    /// server records the apply as a roll back.
    pub async fn roll_back(&self, app: &App, revision: u64) -> Result<ApplyResponse, ClientError> {
        let path = format!(
            "/v1/namespaces/{}/apps/{}",
            app.metadata.namespace, app.metadata.name
        );
        let req = self
            .request(reqwest::Method::PUT, &path)
            .query(&[("rollbackTo", revision)])
            .json(app);
        self.json(req).await
    }

    /// One App.
    pub async fn get_app(&self, namespace: &str, name: &str) -> Result<App, ClientError> {
        self.json(self.request(
            reqwest::Method::GET,
            &format!("/v1/namespaces/{namespace}/apps/{name}"),
        ))
        .await
    }

    /// An App's revisions, oldest first.
    pub async fn revisions(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<Revision>, ClientError> {
        self.json(self.request(
            reqwest::Method::GET,
            &format!("/v1/namespaces/{namespace}/apps/{name}/revisions"),
        ))
        .await
    }

    /// Every App in `namespace`.
    pub async fn list_apps(&self, namespace: &str) -> Result<Vec<App>, ClientError> {
        self.json(self.request(
            reqwest::Method::GET,
            &format!("/v1/namespaces/{namespace}/apps"),
        ))
        .await
    }

    /// Deletes an App.
    pub async fn delete_app(&self, namespace: &str, name: &str) -> Result<(), ClientError> {
        self.send(self.request(
            reqwest::Method::DELETE,
            &format!("/v1/namespaces/{namespace}/apps/{name}"),
        ))
        .await?;
        Ok(())
    }

    /// Creates, updates or confirms a Job.
    pub async fn apply_job(&self, job: &Job) -> Result<ApplyResponse<Job>, ClientError> {
        let path = format!(
            "/v1/namespaces/{}/jobs/{}",
            job.metadata.namespace, job.metadata.name
        );
        let req = self.request(reqwest::Method::PUT, &path).json(job);
        self.json(self.with_pull_credentials(req, &job.spec.component))
            .await
    }

    /// One Job.
    pub async fn get_job(&self, namespace: &str, name: &str) -> Result<Job, ClientError> {
        self.json(self.request(
            reqwest::Method::GET,
            &format!("/v1/namespaces/{namespace}/jobs/{name}"),
        ))
        .await
    }

    /// Every Job in `namespace`.
    pub async fn list_jobs(&self, namespace: &str) -> Result<Vec<Job>, ClientError> {
        self.json(self.request(
            reqwest::Method::GET,
            &format!("/v1/namespaces/{namespace}/jobs"),
        ))
        .await
    }

    /// Every Node of the cluster.
    pub async fn list_nodes(&self) -> Result<Vec<Node>, ClientError> {
        self.json(self.request(reqwest::Method::GET, "/v1/nodes"))
            .await
    }

    /// One Node.
    pub async fn get_node(&self, name: &str) -> Result<Node, ClientError> {
        self.json(self.request(reqwest::Method::GET, &format!("/v1/nodes/{name}")))
            .await
    }

    /// The credential of node `name`, from the server: with the join token for a node that has
    /// none yet; with the client token also a new one that revokes the old (`replace`).
    pub async fn join_node(&self, name: &str, replace: bool) -> Result<String, ClientError> {
        let req = self
            .request(reqwest::Method::POST, &format!("/v1/nodes/{name}/join"))
            .query(&[("replace", replace)]);
        let v: serde_json::Value = self.json(req).await?;
        v.get("credential")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ClientError::Protocol {
                server: self.base.clone(),
                reason: "join answer has no credential".into(),
            })
    }

    /// A certificate for node `name`'s key (its public half, PEM), from the cluster's CA
    /// (with the node's credential).
    pub async fn node_certificate(
        &self,
        name: &str,
        public_key: &str,
    ) -> Result<shoal_api::NodeCertificate, ClientError> {
        let body = shoal_api::NodeCertificateRequest {
            public_key: public_key.to_string(),
        };
        let path = format!("/v1/nodes/{name}/certificate");
        self.json(self.request(reqwest::Method::POST, &path).json(&body))
            .await
    }

    /// Removes node `name` from the cluster: its credential, lease and Node object.
    pub async fn delete_node(&self, name: &str) -> Result<(), ClientError> {
        self.send(self.request(reqwest::Method::DELETE, &format!("/v1/nodes/{name}")))
            .await?;
        Ok(())
    }

    /// Renews the liveness lease of node `name` (with its credential).
    pub async fn keep_node_lease(&self, name: &str) -> Result<(), ClientError> {
        self.send(self.request(reqwest::Method::PUT, &format!("/v1/nodes/{name}/lease")))
            .await?;
        Ok(())
    }

    /// Deletes a Job (stopping its running attempts).
    pub async fn delete_job(&self, namespace: &str, name: &str) -> Result<(), ClientError> {
        self.send(self.request(
            reqwest::Method::DELETE,
            &format!("/v1/namespaces/{namespace}/jobs/{name}"),
        ))
        .await?;
        Ok(())
    }

    /// A log: the raw response, so a followed log can be streamed as it arrives.
    pub async fn logs(
        &self,
        namespace: &str,
        of: &LogSource,
        tail: Option<usize>,
        since: Option<&str>,
        follow: bool,
    ) -> Result<reqwest::Response, ClientError> {
        let mut query: Vec<(&str, String)> = vec![("follow", follow.to_string())];
        let path = match of {
            LogSource::App(name) => format!("/v1/namespaces/{namespace}/apps/{name}/logs"),
            LogSource::Job { name, run } => {
                if let Some(run) = run {
                    query.push(("run", run.to_string()));
                }
                format!("/v1/namespaces/{namespace}/jobs/{name}/logs")
            }
        };
        if let Some(n) = tail {
            query.push(("tail", n.to_string()));
        }
        if let Some(s) = since {
            query.push(("since", s.to_string()));
        }
        let req = self.request(reqwest::Method::GET, &path).query(&query);
        self.send(req).await
    }

    /// Every event in `namespace`, oldest first.
    pub async fn list_events(&self, namespace: &str) -> Result<Vec<Event>, ClientError> {
        let req = self.request(
            reqwest::Method::GET,
            &format!("/v1/namespaces/{namespace}/events"),
        );
        self.json(req).await
    }

    /// What each app of `namespace` is doing now, by name.
    pub async fn app_stats(&self, namespace: &str) -> Result<Vec<AppStats>, ClientError> {
        let req = self.request(
            reqwest::Method::GET,
            &format!("/v1/namespaces/{namespace}/stats"),
        );
        self.json(req).await
    }

    /// Events about one object, oldest first.
    pub async fn events(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
    ) -> Result<Vec<Event>, ClientError> {
        let req = self
            .request(
                reqwest::Method::GET,
                &format!("/v1/namespaces/{namespace}/events"),
            )
            .query(&[("kind", kind), ("name", name)]);
        self.json(req).await
    }
}
