//! Certificates made by the CA here, presented by a listener and verified by a client: SNI,
//! reloading, and the errors a wrong file gets.

use shoal_tls::{
    ALPN_H2, ALPN_HTTP1, Ca, Certificates, ClientTls, NodeIdentity, NodeKey, TlsAcceptor,
    TlsConnector, node_server_name,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn write_pair(dir: &Path, stem: &str, ca: &Ca, names: &[&str]) -> (PathBuf, PathBuf) {
    let issued = ca
        .issue(&names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .unwrap();
    let (cert, key) = (
        dir.join(format!("{stem}.crt")),
        dir.join(format!("{stem}.key")),
    );
    // Through a rename, as a careful operator (or cert-manager) replaces them.
    std::fs::write(dir.join("tmp"), &issued.key_pem).unwrap();
    std::fs::rename(dir.join("tmp"), &key).unwrap();
    std::fs::write(dir.join("tmp"), &issued.cert_pem).unwrap();
    std::fs::rename(dir.join("tmp"), &cert).unwrap();
    (cert, key)
}

/// The common name of the certificate a server at `addr` presents to a client asking for
/// `name`, and the protocol ALPN chose.
async fn handshake(
    addr: std::net::SocketAddr,
    trust: &ClientTls,
    name: &str,
) -> Result<(String, Option<Vec<u8>>), std::io::Error> {
    let mut config = trust.config();
    config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await?;
    let (_, conn) = tls.get_ref();
    let leaf = conn.peer_certificates().unwrap()[0].clone();
    let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
    let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let cn = parsed
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    tls.write_all(b"ping").await?;
    let mut buf = [0u8; 4];
    tls.read_exact(&mut buf).await?;
    Ok((cn, alpn))
}

/// Serves TLS with `certs` on a free loopback port, echoing 4 bytes per connection.
async fn serve(certs: Arc<Certificates>) -> std::net::SocketAddr {
    serve_config(shoal_tls::server_config(certs, &[ALPN_H2, ALPN_HTTP1]).unwrap()).await
}

/// Serves TLS with `config` on a free loopback port, echoing 4 bytes per connection.
async fn serve_config(config: Arc<rustls::ServerConfig>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let acceptor = TlsAcceptor::from(config);
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 4];
                    if tls.read_exact(&mut buf).await.is_ok() {
                        let _ = tls.write_all(&buf).await;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn sni_picks_the_host_certificate_and_falls_back_to_the_default() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::generate("test CA").unwrap();
    let hosts = tmp.path().join("hosts");
    std::fs::create_dir(&hosts).unwrap();
    let (cert, key) = write_pair(tmp.path(), "default", &ca, &["localhost", "127.0.0.1"]);
    write_pair(&hosts, "a", &ca, &["a.example.com"]);
    write_pair(&hosts, "wild", &ca, &["*.b.example.com"]);
    let certs = Certificates::load(Some((cert, key)), Some(hosts)).unwrap();
    let addr = serve(certs).await;
    let ca_file = tmp.path().join("ca.crt");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let trust = ClientTls::ca_file(&ca_file).unwrap();

    let (cn, alpn) = handshake(addr, &trust, "a.example.com").await.unwrap();
    assert_eq!(cn, "a.example.com");
    assert_eq!(alpn.as_deref(), Some(ALPN_H2));
    let (cn, _) = handshake(addr, &trust, "x.b.example.com").await.unwrap();
    assert_eq!(cn, "*.b.example.com");
    let (cn, _) = handshake(addr, &trust, "localhost").await.unwrap();
    assert_eq!(cn, "localhost");
    // A name no certificate covers gets the default one, which the client refuses.
    let refused = handshake(addr, &trust, "other.example.com")
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("certificate"), "{refused}");
    // A client trusting other roots refuses them all.
    let other = ClientTls::system();
    assert!(handshake(addr, &other, "a.example.com").await.is_err());
}

#[tokio::test]
async fn a_changed_certificate_is_presented_to_new_connections() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::generate("test CA").unwrap();
    let (cert, key) = write_pair(tmp.path(), "server", &ca, &["localhost"]);
    let certs = Certificates::load(Some((cert, key)), None).unwrap();
    let addr = serve(certs).await;
    let ca_file = tmp.path().join("ca.crt");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let trust = ClientTls::ca_file(&ca_file).unwrap();
    assert_eq!(
        handshake(addr, &trust, "localhost").await.unwrap().0,
        "localhost"
    );

    write_pair(
        tmp.path(),
        "server",
        &ca,
        &["renewed.localhost", "localhost"],
    );
    // The files are looked at again at most once a second: new connections see the renewed
    // certificate once they are.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (cn, _) = handshake(addr, &trust, "localhost").await.unwrap();
        if cn == "renewed.localhost" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never reloaded");
        tokio::task::yield_now().await;
    }

    // A half-written key is not taken: the renewed pair stays.
    std::fs::write(
        tmp.path().join("server.key"),
        "-----BEGIN PRIVATE KEY-----\n",
    )
    .unwrap();
    let (cn, _) = handshake(addr, &trust, "localhost").await.unwrap();
    assert_eq!(cn, "renewed.localhost");
}

#[test]
fn a_wrong_file_is_named_with_what_it_should_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::generate("test CA").unwrap();
    let (cert, _) = write_pair(tmp.path(), "one", &ca, &["localhost"]);
    let (_, other_key) = write_pair(tmp.path(), "two", &ca, &["localhost"]);
    let err = Certificates::load(Some((cert.clone(), other_key.clone())), None).unwrap_err();
    assert!(
        err.to_string().contains("two.key") && err.to_string().contains("is not the key"),
        "{err}"
    );
    let err = Certificates::load(Some((other_key.clone(), cert.clone())), None).unwrap_err();
    assert!(err.to_string().contains("holds no certificate"), "{err}");
    let missing = tmp.path().join("missing.crt");
    let err = Certificates::load(Some((missing, other_key)), None).unwrap_err();
    assert!(err.to_string().contains("missing.crt"), "{err}");
    let err = Certificates::load(None, None).unwrap_err();
    assert!(err.to_string().contains("--tls-cert"), "{err}");
}

#[tokio::test]
async fn a_node_is_certified_for_its_own_name_and_verified_by_the_cluster_ca_alone() {
    let ca = Ca::generate("Shoal cluster CA").unwrap();
    let key = NodeKey::generate().unwrap();
    let cert = ca
        .issue_for(key.public_pem(), &[node_server_name("n1")])
        .unwrap();
    let identity = NodeIdentity::new(&key, &cert, ca.cert_pem()).unwrap();
    let addr = serve_config(identity.server_config()).await;
    let (cn, alpn) = handshake(addr, identity.peers(), "n1.nodes.shoal.internal")
        .await
        .unwrap();
    assert_eq!(cn, "n1.nodes.shoal.internal");
    assert_eq!(alpn.as_deref(), Some(ALPN_HTTP1));
    // Reached as another node, it is refused: a node answers only for itself.
    let err = handshake(addr, identity.peers(), &node_server_name("n2"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
    // Another CA's clients do not trust it, and the cluster CA alone is trusted.
    let other = Ca::generate("other").unwrap();
    let stranger = ClientTls::from_ca_pem(other.cert_pem()).unwrap();
    assert!(
        handshake(addr, &stranger, &node_server_name("n1"))
            .await
            .is_err()
    );
    // A certificate serves only the key it was issued for.
    let thief = NodeKey::generate().unwrap();
    let err = NodeIdentity::new(&thief, &cert, ca.cert_pem())
        .err()
        .unwrap();
    assert!(err.to_string().contains("not of this node's key"), "{err}");
    // Garbage is refused with what it should have been.
    let err = ca
        .issue_for("not a key", &[node_server_name("n1")])
        .unwrap_err();
    assert!(err.to_string().contains("public key"), "{err}");
}
