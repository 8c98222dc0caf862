//! Against a registry of the test's own that lies or refuses: every blob is checked against
//! its descriptor, formats Shoal does not run are refused with the media types found, and
//! credentials challenges (Basic, Bearer) are answered — or reported, naming the registry.

mod fake;

use fake::{Fake, Gate, WASM, manifest};
use shoal_api::Digest;
use shoal_oci::{Credentials, Descriptor, OciError, media, pull};

async fn error(fake: &Fake, credentials: Credentials) -> String {
    let r = fake.reference(":t");
    match pull(&fake.registry(credentials), &r, 1 << 20).await {
        Err(e) => e.to_string(),
        Ok(p) => panic!("pulled {} bytes", p.component.len()),
    }
}

#[tokio::test]
async fn a_lying_registry_is_caught_and_nothing_is_used() {
    let fake = Fake::start(Gate::Open).await;
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
    fake.route(&path, &m);
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
    let fake = Fake::start(Gate::Open).await;
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
    let bearer = Fake::start(Gate::Bearer).await;
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
    let gated = Fake::start(Gate::Basic).await;
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
