//! The webhook signature: `X-TrialWatch-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
//! Signing the timestamp with the body lets a site refuse replays outside a
//! tolerance window; `v1=` leaves room for a future scheme next to it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "X-TrialWatch-Signature";
pub const ALERT_ID_HEADER: &str = "X-TrialWatch-Alert-Id";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the webhook secret cannot key HMAC-SHA256")]
pub struct InvalidSecret;

/// The header value for `body` signed at unix time `t`.
pub fn signature_header(secret: &[u8], t: i64, body: &[u8]) -> Result<String, InvalidSecret> {
    // HMAC accepts keys of any length; the error arm exists only because the
    // generic `KeyInit` API is fallible.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| InvalidSecret)?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    /// HMAC (RFC 2104) written out over plain SHA-256, independent of the `hmac` crate.
    fn hand_rolled_hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
        const BLOCK: usize = 64;
        let mut k = [0u8; BLOCK];
        if key.len() > BLOCK {
            k[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
        let inner = Sha256::new().chain_update(&ipad).chain_update(message).finalize();
        Sha256::new().chain_update(&opad).chain_update(inner).finalize().into()
    }

    #[test]
    fn the_reference_hmac_matches_rfc_4231_test_case_2() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?"
        let mac = hand_rolled_hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex::encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn the_header_is_t_and_v1_over_timestamp_dot_raw_body() {
        // GIVEN a secret, a send time and the exact body bytes
        let secret = b"whsec-0123456789abcdef";
        let body = br#"{"alertId":"al-1","level":"high"}"#;
        let t = 1_795_000_000;
        // WHEN signed
        let header = signature_header(secret, t, body).unwrap();
        // THEN it is `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, computed independently
        let mut signed = format!("{t}.").into_bytes();
        signed.extend_from_slice(body);
        let expected = format!("t={t},v1={}", hex::encode(hand_rolled_hmac_sha256(secret, &signed)));
        assert_eq!(header, expected);
    }

    #[test]
    fn the_header_matches_a_vector_computed_with_python_hmac() {
        // python3: hmac.new(b"whsec-0123456789abcdef", b'1795000000.{"alertId":"al-1","level":"high"}', hashlib.sha256).hexdigest()
        let header = signature_header(b"whsec-0123456789abcdef", 1_795_000_000, br#"{"alertId":"al-1","level":"high"}"#).unwrap();
        assert_eq!(header, "t=1795000000,v1=96778352b5f877a5c59dbf133df942835f4f1c44fc5cd8e8cd9149414be95467");
    }

    #[test]
    fn a_long_secret_is_hashed_first_like_any_hmac_key() {
        let secret = [7u8; 100];
        let header = signature_header(&secret, 5, b"{}").unwrap();
        assert_eq!(header, format!("t=5,v1={}", hex::encode(hand_rolled_hmac_sha256(&secret, b"5.{}"))));
    }

    #[test]
    fn changing_one_body_byte_or_the_time_changes_the_signature() {
        let s = b"0123456789abcdef";
        let a = signature_header(s, 10, b"{\"a\":1}").unwrap();
        assert_ne!(a, signature_header(s, 10, b"{\"a\":2}").unwrap());
        assert_ne!(a[a.find("v1=").unwrap()..], signature_header(s, 11, b"{\"a\":1}").unwrap()[a.find("v1=").unwrap()..]);
    }
}
