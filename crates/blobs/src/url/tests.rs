//! A real HTTPS server on loopback, with a CA and a certificate made by `openssl` for the
//! test, serving a blob, a redirect to it, a body larger than the limit and a 404.

use super::*;
use std::path::PathBuf;
use std::process::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA and a `localhost` certificate it signed, in `dir`: (ca.pem, cert.pem, key.pem).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.pem"],
        &["-days", "2", "-subj", "/CN=shoal test CA"],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

/// Serves HTTPS on a free loopback port with `cert`/`key`; returns the port.
async fn https_server(cert: &Path, key: &Path, blob: Vec<u8>) -> u16 {
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let blob = Arc::new(blob);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, blob) = (acceptor.clone(), blob.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let path = String::from_utf8_lossy(&head)
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .to_string();
                let (status, extra, body): (&str, String, &[u8]) = match path.as_str() {
                    "/app.wasm" => ("200 OK", String::new(), &blob),
                    "/moved" => ("302 Found", "location: /app.wasm\r\n".into(), b""),
                    "/loop" => ("302 Found", "location: /loop\r\n".into(), b""),
                    "/big" => ("200 OK", String::new(), &[7u8; 4096]),
                    _ => ("404 Not Found", String::new(), b""),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.write_all(body).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test]
async fn https_blobs_are_fetched_from_a_trusted_server_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let blob = b"\0asm component bytes".to_vec();
    let digest = Digest::of(&blob);
    let port = https_server(&cert, &key, blob.clone()).await;
    let url = |path: &str| format!("https://localhost:{port}{path}");
    let fetcher = Fetcher::new(Some(&ca), 1024).unwrap();

    assert_eq!(
        fetcher.fetch(&url("/app.wasm"), &digest).await.unwrap(),
        blob
    );
    assert_eq!(fetcher.fetch(&url("/moved"), &digest).await.unwrap(), blob);

    let other = Digest::of(b"other");
    let err = fetcher
        .fetch(&url("/app.wasm"), &other)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("invalid content digest; expected sha256:"),
        "{err}"
    );
    let err = fetcher
        .fetch(&url("/big"), &digest)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.ends_with("/big is larger than 1024 bytes"), "{err}");
    let err = fetcher
        .fetch(&url("/nope"), &digest)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.ends_with("/nope answered 404 Not Found"), "{err}");
    let err = fetcher
        .fetch(&url("/loop"), &digest)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.ends_with("more than 10 redirects"), "{err}");
    let err = fetcher
        .fetch("ftp://x/y", &digest)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not an http:// or https:// URL"), "{err}");

    // A server whose certificate no trusted root signed is refused.
    let untrusting = Fetcher::new(None, 1024).unwrap();
    let err = untrusting
        .fetch(&url("/app.wasm"), &digest)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("TLS: invalid peer certificate"), "{err}");

    let err = Fetcher::new(Some(&dir.path().join("leaf.ext")), 1)
        .err()
        .unwrap()
        .to_string();
    assert!(err.ends_with("holds no PEM certificate"), "{err}");
}
