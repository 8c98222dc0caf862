//! Artifact shapes beyond one manifest of one component, against a registry of the test's
//! own: an image index leads to its wasm platform's manifest (and a lying one is caught), and
//! a Spin application is told apart from a component in both directions.

mod fake;

use fake::{Fake, Gate, WASM, manifest};
use shoal_api::Digest;
use shoal_oci::progress::none;
use shoal_oci::{Credentials, Descriptor, media, pull, pull_spin};

/// An OCI image index of `(os, architecture, manifest bytes)`.
fn index(entries: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let manifests: Vec<_> = entries
        .iter()
        .map(|(os, arch, m)| {
            serde_json::json!({
                "mediaType": media::OCI_MANIFEST,
                "digest": Digest::of(m).to_string(),
                "size": m.len(),
                "platform": { "os": os, "architecture": arch },
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": manifests,
    }))
    .unwrap()
}

#[tokio::test]
async fn an_image_index_leads_to_its_wasm_platform() {
    let fake = Fake::start(Gate::Open).await;
    let layer = Descriptor::of(media::WASM_LAYER, WASM);
    let wasm = manifest(media::WASM_CONFIG, vec![layer.clone()]);
    let linux = manifest(media::OCI_CONFIG, vec![]);
    let idx = index(&[("linux", "amd64", &linux), ("wasip2", "wasm", &wasm)]);
    fake.serve_index(&idx, &[&linux, &wasm], &[(&layer.digest, WASM)]);
    let registry = fake.registry(Credentials::Anonymous);
    let pulled = pull(&registry, &fake.reference(":t"), 1 << 20)
        .await
        .unwrap();
    assert_eq!(pulled.component, WASM);
    // The reference resolves to the index: what the tag names, and what pins the platform.
    assert_eq!(pulled.digest, Digest::of(&idx));

    // An index naming a manifest by a digest the registry's bytes do not have.
    let mut lying = index(&[("wasip2", "wasm", &wasm)]);
    let other = manifest(media::WASM_CONFIG, vec![layer.clone(), layer.clone()]);
    fake.serve_index(&lying, &[&other], &[]);
    // Serve other bytes under the digest the index names.
    fake.route(&format!("/v2/r/manifests/{}", Digest::of(&wasm)), &other);
    let err = pull(&registry, &fake.reference(":t"), 1 << 20)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("the index names manifest"), "{err}");
    assert!(err.contains("nothing was used"), "{err}");

    lying = index(&[("linux", "amd64", &linux), ("linux", "arm64", &linux)]);
    fake.serve_index(&lying, &[&linux], &[]);
    let err = pull(&registry, &fake.reference(":t"), 1 << 20)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("an image index without a wasm platform (it has [linux/amd64, linux/arm64])"),
        "{err}"
    );
}

/// Why `fake`'s tag `t` does not pull as a Spin application of at most `max_total` bytes.
async fn spin_error(fake: &Fake, max_total: u64) -> String {
    let registry = fake.registry(Credentials::Anonymous);
    pull_spin(
        &registry,
        &fake.reference(":t"),
        1 << 20,
        max_total,
        |_| false,
        &none(),
    )
    .await
    .unwrap_err()
    .to_string()
}

#[tokio::test]
async fn a_spin_application_and_a_component_are_told_apart() {
    let fake = Fake::start(Gate::Open).await;
    let registry = fake.registry(Credentials::Anonymous);
    let locked = br#"{"spin_lock_version":0,"triggers":[],"components":[]}"#;
    let app_layer = Descriptor::of(media::SPIN_APPLICATION, locked);
    let wasm_layer = Descriptor::of(media::SPIN_WASM, WASM);
    let spin = manifest(
        media::OCI_CONFIG,
        vec![wasm_layer.clone(), app_layer.clone()],
    );
    fake.serve(
        &spin,
        &[(&app_layer.digest, locked), (&wasm_layer.digest, WASM)],
    );
    let err = pull(&registry, &fake.reference(":t"), 1 << 20)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("this is a Spin application"), "{err}");
    assert!(err.contains("shoal apply --spin"), "{err}");

    let artifact = pull_spin(
        &registry,
        &fake.reference(":t"),
        1 << 20,
        1 << 20,
        |_| false,
        &none(),
    )
    .await
    .unwrap();
    assert_eq!(artifact.locked, locked);
    assert_eq!(
        artifact.blobs.get(&Digest::of(WASM)).map(Vec::as_slice),
        Some(WASM)
    );
    // A layer the caller holds is not fetched.
    let held = pull_spin(
        &registry,
        &fake.reference(":t"),
        1 << 20,
        1 << 20,
        |d| *d == Digest::of(WASM),
        &none(),
    )
    .await
    .unwrap();
    assert!(held.blobs.is_empty());
    // The total is bounded.
    let err = spin_error(&fake, 4).await;
    assert!(err.contains("over 4 bytes in all"), "{err}");

    // Layers a Spin application does not have are refused, naming them.
    let odd = Descriptor::of("application/x-odd", b"odd");
    fake.serve(
        &manifest(media::OCI_CONFIG, vec![odd, app_layer.clone()]),
        &[(&app_layer.digest, locked)],
    );
    let err = spin_error(&fake, 1 << 20).await;
    assert!(err.contains("has media type application/x-odd"), "{err}");

    // A component is not a Spin application.
    fake.serve(
        &manifest(
            media::WASM_CONFIG,
            vec![Descriptor::of(media::WASM_LAYER, WASM)],
        ),
        &[],
    );
    let err = spin_error(&fake, 1 << 20).await;
    assert!(
        err.contains("not a Spin application (config application/vnd.wasm.config.v0+json"),
        "{err}"
    );
}
