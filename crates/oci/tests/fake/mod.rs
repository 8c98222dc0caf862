//! A registry of the tests' own, on a free loopback port, that serves whatever a test tells
//! it (lies included) behind an optional Basic or Bearer gate.

#![allow(dead_code, reason = "each test file uses some of it")]

use shoal_api::{ComponentRef, Digest, OciRef};
use shoal_blobs::Fetcher;
use shoal_oci::{Credentials, Descriptor, Manifest, Registry, media};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes that start like a component.
pub const WASM: &[u8] = b"\0asm\x0d\0\x01\0component bytes";

/// What the fake registry answers: path → (status, extra headers, body).
type Routes = HashMap<String, (u16, String, Vec<u8>)>;

/// How it wants to be authorised.
#[derive(Clone, Copy)]
pub enum Gate {
    Open,
    /// `WWW-Authenticate: Basic`; accepts `Basic dTpw` (u:p).
    Basic,
    /// `WWW-Authenticate: Bearer realm=…/token`; the realm gives a token for u:p only.
    Bearer,
}

pub struct Fake {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    routes: Arc<Mutex<Routes>>,
    /// How many token requests the realm answered.
    pub token_requests: Arc<Mutex<usize>>,
}

impl Fake {
    /// A registry on a free loopback port, guarded by `gate`.
    pub async fn start(gate: Gate) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let routes: Arc<Mutex<Routes>> = Arc::default();
        let token_requests: Arc<Mutex<usize>> = Arc::default();
        let (r, t, a) = (routes.clone(), token_requests.clone(), addr.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    return;
                };
                let (routes, tokens, addr) = (r.clone(), t.clone(), a.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head).to_string();
                    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let auth = text
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("authorization: ")
                                .or_else(|| l.strip_prefix("Authorization: "))
                        })
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    let (status, extra, body) = if path.starts_with("/token") {
                        *tokens.lock().unwrap() += 1;
                        if auth == "Basic dTpw" {
                            (200, String::new(), br#"{"token":"good"}"#.to_vec())
                        } else {
                            (401, String::new(), Vec::new())
                        }
                    } else {
                        let allowed = match gate {
                            Gate::Open => true,
                            Gate::Basic => auth == "Basic dTpw",
                            Gate::Bearer => auth == "Bearer good",
                        };
                        if allowed {
                            let routes = routes.lock().unwrap();
                            routes
                                .get(&path)
                                .cloned()
                                .unwrap_or((404, String::new(), Vec::new()))
                        } else {
                            let challenge = match gate {
                                Gate::Bearer => format!(
                                    "www-authenticate: Bearer realm=\"http://{addr}/token\",service=\"fake\"\r\n"
                                ),
                                _ => "www-authenticate: Basic realm=\"fake\"\r\n".into(),
                            };
                            (401, challenge, br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec())
                        }
                    };
                    let response = format!(
                        "HTTP/1.1 {status} X\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = tcp.write_all(response.as_bytes()).await;
                    let _ = tcp.write_all(&body).await;
                    let _ = tcp.shutdown().await;
                });
            }
        });
        Fake {
            addr,
            routes,
            token_requests,
        }
    }
}

impl Fake {
    /// Serves `manifest` at tag `t` and each (descriptor digest, served bytes) blob.
    pub fn serve(&self, manifest: &[u8], blobs: &[(&str, &[u8])]) {
        let mut routes = self.routes.lock().unwrap();
        let ct = format!("content-type: {}\r\n", media::OCI_MANIFEST);
        routes.insert("/v2/r/manifests/t".into(), (200, ct, manifest.to_vec()));
        for (digest, bytes) in blobs {
            routes.insert(
                format!("/v2/r/blobs/{digest}"),
                (200, String::new(), bytes.to_vec()),
            );
        }
    }

    /// Serves the image index `index` at tag `t`, each of `manifests` by its digest, and
    /// each blob.
    pub fn serve_index(&self, index: &[u8], manifests: &[&[u8]], blobs: &[(&str, &[u8])]) {
        self.serve(index, blobs);
        let mut routes = self.routes.lock().unwrap();
        let ct = format!("content-type: {}\r\n", media::OCI_INDEX);
        routes.insert("/v2/r/manifests/t".into(), (200, ct, index.to_vec()));
        let ct = format!("content-type: {}\r\n", media::OCI_MANIFEST);
        for m in manifests {
            routes.insert(
                format!("/v2/r/manifests/{}", Digest::of(m)),
                (200, ct.clone(), m.to_vec()),
            );
        }
    }

    /// Serves `body` at `path`, whatever was there.
    pub fn route(&self, path: &str, body: &[u8]) {
        let ct = format!("content-type: {}\r\n", media::OCI_MANIFEST);
        self.routes
            .lock()
            .unwrap()
            .insert(path.into(), (200, ct, body.to_vec()));
    }

    pub fn reference(&self, suffix: &str) -> OciRef {
        match ComponentRef::parse(&format!("oci://{}/r{suffix}", self.addr)).unwrap() {
            ComponentRef::Oci(r) => r,
            other => panic!("{other:?}"),
        }
    }

    pub fn registry(&self, credentials: Credentials) -> Registry {
        Registry::new(
            &self.addr,
            credentials,
            &[],
            Fetcher::new(None, 1 << 20).unwrap(),
        )
    }
}

/// An OCI image manifest of a `config_type` config (`{}`) and `layers`.
pub fn manifest(config_type: &str, layers: Vec<Descriptor>) -> Vec<u8> {
    serde_json::to_vec(&Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::of(config_type, b"{}"),
        layers,
        annotations: Default::default(),
    })
    .unwrap()
}
