//! `POST /token`: Google's OAuth2 token endpoint for service accounts (the jwt-bearer grant), so
//! that Vertex AI's token flow runs for real against the mock.
//!
//! The assertion must be an RS256 JWT with a `kid`, and claims `iss`, `scope` (including
//! cloud-platform), `aud` (a `…/token` URL), `iat` and `exp` (at most one hour apart, around now).
//! With `MockConfig::token_public_key` its signature is verified (with `ring`); without one only its
//! structure and claims are checked. Refusals use Google's shape,
//! `{"error":"invalid_grant","error_description":…}`. Issued tokens live
//! `MockConfig::token_lifetime_secs` and are accepted on the Vertex paths.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use http::request::Parts;
use http::StatusCode;
use serde_json::{json, Value};

use crate::http::{json_response, percent_decode, Resp};
use crate::state::State;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Clock skew tolerated on `iat`.
const SKEW: u64 = 300;

pub(crate) fn handle(parts: &Parts, body: &Bytes, state: &State) -> Resp {
    let is_form = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return refuse("invalid_request", "Content-Type must be application/x-www-form-urlencoded");
    }
    let form = String::from_utf8_lossy(body);
    let field = |name: &str| {
        form.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| percent_decode(&v.replace('+', " ")).into_owned())
        })
    };
    match field("grant_type") {
        Some(g) if g == GRANT => {}
        Some(g) => return refuse("unsupported_grant_type", &format!("Invalid grant_type: {g}")),
        None => return refuse("unsupported_grant_type", "Invalid grant_type: "),
    }
    let Some(assertion) = field("assertion") else {
        return refuse("invalid_request", "Missing required parameter: assertion");
    };
    if let Err(why) = check_assertion(&assertion, state.token_key.as_deref(), unix_now()) {
        return refuse("invalid_grant", &why);
    }
    let lifetime = state.config.token_lifetime_secs;
    let token = format!("ya29.mock-{}-{:016x}", state.next_id(), rand::random::<u64>());
    state.issue_token(token.clone(), Duration::from_secs(lifetime));
    json_response(StatusCode::OK, &json!({"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}))
}

fn refuse(error: &str, description: &str) -> Resp {
    json_response(StatusCode::BAD_REQUEST, &json!({"error": error, "error_description": description}))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Checks the JWT's structure, claims and (with a key) signature; `Err` holds Google's wording.
pub(crate) fn check_assertion(jwt: &str, key: Option<&[u8]>, now: u64) -> Result<(), String> {
    let invalid = || "Invalid JWT: the assertion is not a signed JWT".to_string();
    let mut parts = jwt.split('.');
    let (Some(h), Some(c), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let json_part = |p: &str| -> Option<Value> { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok() };
    let (Some(header), Some(claims)) = (json_part(h), json_part(c)) else {
        return Err(invalid());
    };
    let signature = URL_SAFE_NO_PAD.decode(sig).map_err(|_| invalid())?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err("Invalid JWT: the signing algorithm must be RS256".into());
    }
    if header.get("kid").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err("Invalid JWT: no key id (kid) in the header".into());
    }
    check_claims(&claims, now)?;
    if let Some(key) = key {
        let public = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, key);
        public.verify(format!("{h}.{c}").as_bytes(), &signature).map_err(|_| "Invalid JWT Signature.".to_string())?;
    }
    Ok(())
}

fn check_claims(claims: &Value, now: u64) -> Result<(), String> {
    let text = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or("");
    if !text("iss").contains('@') {
        return Err("Invalid JWT: iss must be the service account's email".into());
    }
    if !text("scope").split(' ').any(|s| s == CLOUD_PLATFORM) {
        return Err(format!("Invalid JWT: scope must include {CLOUD_PLATFORM}"));
    }
    if !text("aud").ends_with("/token") {
        return Err("Invalid JWT: aud must be the token endpoint".into());
    }
    let (Some(iat), Some(exp)) = (claims.get("iat").and_then(Value::as_u64), claims.get("exp").and_then(Value::as_u64))
    else {
        return Err("Invalid JWT: iat and exp must be numbers".into());
    };
    let short_lived = exp > iat && exp - iat <= 3600;
    let timely = iat <= now + SKEW && exp > now;
    if !(short_lived && timely) {
        return Err("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. \
                    Check your iat and exp values in the JWT claim."
            .into());
    }
    Ok(())
}

/// A PEM public key as DER `RSAPublicKey` (what `ring` verifies with): `RSA PUBLIC KEY` as it
/// is, `PUBLIC KEY` (SubjectPublicKeyInfo) unwrapped.
pub(crate) fn public_key_der(pem: &str) -> Result<Vec<u8>, String> {
    let start = pem.find("-----BEGIN ").ok_or("not a PEM public key")?;
    let rest = pem.get(start + "-----BEGIN ".len()..).ok_or("not a PEM public key")?;
    let (label, rest) = rest.split_once("-----").ok_or("not a PEM public key")?;
    let end = rest.find("-----END ").ok_or("unterminated PEM block")?;
    let b64: String = rest.get(..end).unwrap_or("").chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(b64).map_err(|e| format!("bad PEM base64: {e}"))?;
    match label {
        "RSA PUBLIC KEY" => Ok(der),
        "PUBLIC KEY" => spki_rsa_key(&der).ok_or_else(|| "not an RSA SubjectPublicKeyInfo".into()),
        other => Err(format!("expected a PUBLIC KEY or RSA PUBLIC KEY, found {other}")),
    }
}

/// `SEQUENCE { SEQUENCE { algorithm }, BIT STRING { 0, RSAPublicKey } }` -> `RSAPublicKey`.
fn spki_rsa_key(der: &[u8]) -> Option<Vec<u8>> {
    let (spki, _) = der_item(der, 0x30)?;
    let (_, after_alg) = der_item(spki, 0x30)?;
    let (bits, _) = der_item(after_alg, 0x03)?;
    match bits.split_first() {
        Some((0, key)) => Some(key.to_vec()),
        _ => None,
    }
}

/// One DER item with tag `tag`: its contents and what follows it.
fn der_item(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, rest) = (rest.get(..n)?, rest.get(n..)?);
        (bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), rest)
    };
    Some((rest.get(..len)?, rest.get(len..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &str = include_str!("../../understudy/tests/fixtures/vertex-test-key.pub.pem");

    fn jwt(header: Value, claims: Value) -> String {
        let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.{}", enc(&header), enc(&claims), URL_SAFE_NO_PAD.encode(b"sig"))
    }

    fn claims(now: u64) -> Value {
        json!({"iss": "svc@p.iam.gserviceaccount.com", "scope": CLOUD_PLATFORM, "aud": "http://127.0.0.1:1/token",
               "iat": now, "exp": now + 3600})
    }

    #[test]
    fn claims_are_checked() {
        let now = 1_700_000_000;
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": "k1"});
        assert_eq!(check_assertion(&jwt(header.clone(), claims(now)), None, now), Ok(()));
        let mut c = claims(now);
        c["exp"] = json!(now + 7200);
        assert!(check_assertion(&jwt(header.clone(), c), None, now).unwrap_err().contains("short-lived"));
        let mut c = claims(now);
        c["scope"] = json!("https://www.googleapis.com/auth/userinfo.email");
        assert!(check_assertion(&jwt(header.clone(), c), None, now).unwrap_err().contains("scope"));
        assert!(check_assertion(&jwt(header.clone(), claims(now - 4000)), None, now).is_err());
        assert!(check_assertion(&jwt(json!({"alg": "HS256", "kid": "k"}), claims(now)), None, now).is_err());
        assert!(check_assertion(&jwt(json!({"alg": "RS256"}), claims(now)), None, now).unwrap_err().contains("kid"));
        assert!(check_assertion("a.b", None, now).is_err());
        // With a key, a bad signature is refused with Google's message.
        let key = public_key_der(PUBLIC).unwrap();
        assert_eq!(check_assertion(&jwt(header, claims(now)), Some(&key), now), Err("Invalid JWT Signature.".into()));
    }

    #[test]
    fn public_keys_parse() {
        let der = public_key_der(PUBLIC).unwrap();
        // RSAPublicKey is a SEQUENCE of two INTEGERs.
        assert_eq!(der.first(), Some(&0x30));
        assert!(public_key_der("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----").is_err());
        assert!(public_key_der("nothing").is_err());
        assert!(public_key_der("-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,200}", bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = check_assertion(&s, None, 0);
            let _ = public_key_der(&s);
            let _ = spki_rsa_key(&bytes);
        }
    }
}
