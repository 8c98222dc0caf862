//! Against a real registry (Distribution 2.8, `docker-registry`): what `shoal push` writes is
//! what a pull by tag or by digest gets back, checked; a moved tag resolves to the new bytes.

use shoal_api::{ComponentRef, Digest, OciRef};
use shoal_blobs::Fetcher;
use shoal_oci::progress::none;
use shoal_oci::{Credentials, OciError, Registry, pull, push};

fn component(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../../{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn reference(text: &str) -> OciRef {
    match ComponentRef::parse(text).unwrap() {
        ComponentRef::Oci(r) => r,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_pushed_component_is_pulled_back_by_tag_and_by_digest() {
    let server = shoal_testkit::Registry::start();
    let http = Fetcher::new(None, 1 << 30).unwrap();
    let registry = Registry::new(&server.addr, Credentials::Anonymous, &[], http);
    let hello = component("examples/hello-c/hello.wasm");
    let tag = reference(&format!("oci://{}/acme/hello:1.0", server.addr));

    let digest = push(&registry, &tag, &hello, &none()).await.unwrap();
    let pulled = pull(&registry, &tag, 1 << 30).await.unwrap();
    assert_eq!(pulled.digest, digest);
    assert_eq!(pulled.component, hello);
    assert_eq!(pulled.format, shoal_oci::Format::WasmArtifact);

    let by_digest = reference(&format!("oci://{}/acme/hello@{digest}", server.addr));
    assert_eq!(
        pull(&registry, &by_digest, 1 << 30)
            .await
            .unwrap()
            .component,
        hello
    );

    // The tag moves to other bytes: the same reference now resolves to another digest, and
    // the old digest still names the old bytes.
    let v2 = component("tests/fixtures/hello-v2.wasm");
    let moved = push(&registry, &tag, &v2, &none()).await.unwrap();
    assert_ne!(moved, digest);
    let again = pull(&registry, &tag, 1 << 30).await.unwrap();
    assert_eq!((again.digest, again.component), (moved, v2));
    assert_eq!(
        pull(&registry, &by_digest, 1 << 30)
            .await
            .unwrap()
            .component,
        hello
    );

    // What is not there, is not there, named.
    let missing = reference(&format!("oci://{}/acme/hello:nope", server.addr));
    let err = pull(&registry, &missing, 1 << 30)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "oci://{}/acme/hello:nope: the registry answered 404",
            server.addr
        )),
        "{err}"
    );
    let absent = Digest::of(b"absent");
    let gone = reference(&format!("oci://{}/acme/hello@{absent}", server.addr));
    assert!(matches!(
        pull(&registry, &gone, 1 << 30).await,
        Err(OciError::Status { .. })
    ));

    // A limit below the layer's size refuses it before fetching.
    let err = pull(&registry, &tag, 16).await.unwrap_err().to_string();
    assert!(err.contains("over the limit of 16"), "{err}");

    // A core module is not published.
    let module = component("tests/fixtures/command-module.wasm");
    let err = push(&registry, &tag, &module, &none())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a Wasm component: a core module"), "{err}");
}
