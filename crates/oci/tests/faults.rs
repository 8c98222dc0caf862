//! Against a registry of the test's own that lies or refuses: every blob is checked against
//! its descriptor, formats Shoal does not run are refused with the media types found, and
//! credentials challenges (Basic, Bearer) are answered — or reported, naming the registry.

use shoal_api::{ComponentRef, Digest, OciRef};
use shoal_blobs::Fetcher;
use shoal_oci::{Credentials, Descriptor, Manifest, OciError, Registry, media, pull};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the fake registry answers: path → (status, extra headers, body).
type Routes = HashMap<String, (u16, String, Vec<u8>)>;

/// How it wants to be authorised.
#[derive(Clone, Copy)]
enum Gate {
    Open,
    /// `WWW-Authenticate: Basic`; accepts `Basic dTpw` (u:p).
    Basic,
    /// `WWW-Authenticate: Bearer realm=…/token`; the realm gives a token for u:p only.
    Bearer,
}

struct Fake {
    addr: String,
    routes: Arc<Mutex<Routes>>,
    token_requests: Arc<Mutex<usize>>,
}

async fn fake(gate: Gate) -> Fake {
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

impl Fake {
    /// Serves `manifest` at tag `t` and each (descriptor digest, served bytes) blob.
    fn serve(&self, manifest: &[u8], blobs: &[(&str, &[u8])]) {
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

    fn reference(&self, suffix: &str) -> OciRef {
        match ComponentRef::parse(&format!("oci://{}/r{suffix}", self.addr)).unwrap() {
            ComponentRef::Oci(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn registry(&self, credentials: Credentials) -> Registry {
        Registry::new(
            &self.addr,
            credentials,
            &[],
            Fetcher::new(None, 1 << 20).unwrap(),
        )
    }
}

fn manifest(config_type: &str, layers: Vec<Descriptor>) -> Vec<u8> {
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

async fn error(fake: &Fake, credentials: Credentials) -> String {
    let r = fake.reference(":t");
    match pull(&fake.registry(credentials), &r, 1 << 20).await {
        Err(e) => e.to_string(),
        Ok(p) => panic!("pulled {} bytes", p.component.len()),
    }
}

const WASM: &[u8] = b"\0asm\x0d\0\x01\0component bytes";

#[tokio::test]
async fn a_lying_registry_is_caught_and_nothing_is_used() {
    let fake = fake(Gate::Open).await;
    let layer = Descriptor::of(media::WASM_LAYER, WASM);
    let d = layer.digest.clone();

    // The right bytes: pulled.
    let m = manifest(media::WASM_CONFIG, vec![layer.clone()]);
    fake.serve(&m, &[(&d, WASM)]);
    let pulled = pull(
        &fake.registry(Credentials::Anonymous),
        &fake.reference(":t"),
        1 << 20,
    )
    .await
    .unwrap();
    assert_eq!(
        (pulled.component.as_slice(), pulled.digest),
        (WASM, Digest::of(&m))
    );

    // Other bytes of the same length.
    let mut other = WASM.to_vec();
    *other.last_mut().unwrap() ^= 1;
    fake.serve(&m, &[(&d, &other)]);
    let err = error(&fake, Credentials::Anonymous).await;
    assert!(
        err.contains("served other bytes for layer sha256:"),
        "{err}"
    );
    assert!(err.ends_with("; nothing was used"), "{err}");

    // A truncated layer.
    fake.serve(&m, &[(&d, &WASM[..8])]);
    let err = error(&fake, Credentials::Anonymous).await;
    assert!(
        err.contains(&format!(
            "is 8 bytes, but its descriptor says {}",
            WASM.len()
        )),
        "{err}"
    );

    // A manifest asked for by digest that is not that digest.
    let wrong = fake.reference(&format!("@{}", Digest::of(b"x")));
    let path = format!("/v2/r/manifests/{}", Digest::of(b"x"));
    fake.routes
        .lock()
        .unwrap()
        .insert(path, (200, String::new(), m.clone()));
    let err = pull(&fake.registry(Credentials::Anonymous), &wrong, 1 << 20)
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::Verification { .. }), "{err}");

    // A manifest over the size limit.
    fake.serve(&vec![b' '; 5 << 20], &[]);
    let err = error(&fake, Credentials::Anonymous).await;
    assert!(err.contains("manifest: more than 4194304 bytes"), "{err}");
}

#[tokio::test]
async fn formats_shoal_does_not_run_are_refused_with_their_media_types() {
    let fake = fake(Gate::Open).await;
    let layer = Descriptor::of(media::WASM_LAYER, WASM);
    fake.serve(
        &manifest(media::WASM_CONFIG, vec![layer.clone(), layer.clone()]),
        &[],
    );
    let err = error(&fake, Credentials::Anonymous).await;
    assert!(
        err.contains(
            "a Wasm artifact with 2 layers, 2 of them application/wasm; it must have exactly one"
        ),
        "{err}"
    );

    fake.serve(
        &manifest("application/vnd.example.thing+json", vec![layer]),
        &[],
    );
    let err = error(&fake, Credentials::Anonymous).await;
    assert!(err.contains("an artifact of an unknown kind (config application/vnd.example.thing+json, layers [application/wasm])"), "{err}");
    assert!(
        err.contains("Shoal runs a Wasm artifact (config application/vnd.wasm.config.v0+json"),
        "{err}"
    );

    // An image of one uncompressed layer holding one .wasm file is run.
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(WASM.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "app/hello.wasm", WASM)
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let image_layer = Descriptor::of(media::OCI_LAYER_TAR, &tar);
    let d = image_layer.digest.clone();
    fake.serve(
        &manifest(media::OCI_CONFIG, vec![image_layer]),
        &[(&d, &tar)],
    );
    let pulled = pull(
        &fake.registry(Credentials::Anonymous),
        &fake.reference(":t"),
        1 << 20,
    )
    .await
    .unwrap();
    assert_eq!(
        (pulled.component.as_slice(), pulled.format),
        (WASM, shoal_oci::Format::Image)
    );

    // The same layer gzip-compressed, as `docker push` sends it.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let gz = gz.finish().unwrap();
    let gz_layer = Descriptor::of(media::DOCKER_LAYER_TAR_GZIP, &gz);
    let d = gz_layer.digest.clone();
    fake.serve(
        &manifest(media::DOCKER_CONFIG, vec![gz_layer]),
        &[(&d, &gz)],
    );
    let registry = fake.registry(Credentials::Anonymous);
    let pulled = pull(&registry, &fake.reference(":t"), 1 << 20)
        .await
        .unwrap();
    assert_eq!(pulled.component, WASM);
    // A layer that unpacks to more than the limit (the file's bytes start after its 512-byte
    // tar header) is refused, not cut short.
    let err = pull(&registry, &fake.reference(":t"), 520)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than 520 bytes unpacked"), "{err}");
}

#[tokio::test]
async fn credentials_challenges_are_answered_or_reported() {
    let basic = || Credentials::Basic {
        username: "u".into(),
        password: "p".into(),
    };
    let layer = Descriptor::of(media::WASM_LAYER, WASM);
    let d = layer.digest.clone();
    let m = manifest(media::WASM_CONFIG, vec![layer]);

    // Bearer: the token comes from the realm, with the Basic credentials, once.
    let bearer = fake(Gate::Bearer).await;
    bearer.serve(&m, &[(&d, WASM)]);
    let registry = bearer.registry(basic());
    let pulled = pull(&registry, &bearer.reference(":t"), 1 << 20)
        .await
        .unwrap();
    assert_eq!(pulled.component, WASM);
    assert_eq!(
        *bearer.token_requests.lock().unwrap(),
        1,
        "the token is reused"
    );
    let err = error(&bearer, Credentials::Anonymous).await;
    assert!(
        err.contains("the registry needs credentials: the token realm answered 401"),
        "{err}"
    );

    // Basic: answered with the credentials; without them, reported.
    let gated = fake(Gate::Basic).await;
    gated.serve(&m, &[(&d, WASM)]);
    assert_eq!(
        pull(&gated.registry(basic()), &gated.reference(":t"), 1 << 20)
            .await
            .unwrap()
            .component,
        WASM
    );
    let err = error(&gated, Credentials::Anonymous).await;
    assert!(
        err.ends_with(&format!(
            "the registry needs credentials; log in with `shoal registry login {}`",
            gated.addr
        )),
        "{err}"
    );
    let wrong = Credentials::Basic {
        username: "u".into(),
        password: "wrong".into(),
    };
    let err = error(&gated, wrong).await;
    assert!(
        err.contains("needs credentials: authentication required"),
        "{err}"
    );
}
