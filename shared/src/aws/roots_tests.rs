use base64::Engine;
use sha2::{Digest, Sha256};

use super::AWS_ROOTS;

/// The DER bytes of a one-certificate PEM file.
fn der(pem: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(pem).expect("PEM is ASCII");
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(text.matches("-----BEGIN CERTIFICATE-----").count(), 1, "one certificate per file");
    base64::engine::general_purpose::STANDARD.decode(body).expect("PEM body is base64")
}

#[test]
fn the_aws_roots_are_the_five_amazon_trust_services_roots() {
    // SHA-256 of each certificate, as Amazon Trust Services publishes them
    // (https://www.amazontrust.com/repository/).
    let expected = [
        ("Amazon Root CA 1", "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e"),
        ("Amazon Root CA 2", "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4"),
        ("Amazon Root CA 3", "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4"),
        ("Amazon Root CA 4", "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092"),
        ("Starfield Services Root Certificate Authority - G2", "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5"),
    ];
    assert_eq!(AWS_ROOTS.len(), expected.len());
    for ((name, pem), (want_name, want_sha)) in AWS_ROOTS.iter().zip(expected) {
        assert_eq!(*name, want_name);
        let cert = der(pem);
        assert_eq!(hex::encode(Sha256::digest(&cert)), want_sha, "{name}");
        // The subject's common name is in the DER as a printable string.
        let cn = name.as_bytes();
        assert!(cert.windows(cn.len()).any(|w| w == cn), "{name} names itself");
    }
}

#[test]
fn the_shared_client_builds_with_the_aws_roots() {
    // Building the client must not touch the platform store or fail on the embedded roots;
    // the connector (and the rustls configuration) is built by the first request, which the
    // emulator test `tests/aws_warm_up.rs` makes through this client.
    let _client = super::https_client();
}
