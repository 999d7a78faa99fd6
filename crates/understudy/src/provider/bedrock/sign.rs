//! SigV4 signing with AWS's own signer (`aws-sigv4`): the canonical request covers the method,
//! the path (percent-encoded once more, as every service but S3 expects), every header we send,
//! and the SHA-256 of the exact body bytes; a session token goes in `x-amz-security-token`
//! and is signed too.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign as sigv4_sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::AwsSettings;
use crate::failure::{Failure, FailureClass};

/// Signs a request in place: adds `x-amz-date`, `authorization` (and `x-amz-security-token`).
/// Credential headers are marked sensitive so they never print.
pub(super) fn sign(
    aws: &AwsSettings,
    service: &str,
    method: &str,
    url: &str,
    headers: &mut HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<(), Failure> {
    credentials_present(aws)?;
    // The signer needs an absolute http(s) URL (it panics without a scheme or host); anything
    // else is a configuration mistake.
    let absolute = url
        .parse::<http::Uri>()
        .ok()
        .is_some_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty()));
    if !absolute {
        return Err(bad_config(format!("cannot sign a request to {url:?}: not an absolute http(s) URL")));
    }
    let token = (!aws.session_token.is_empty()).then(|| aws.session_token.expose().to_string());
    let identity =
        Credentials::new(aws.access_key_id.expose(), aws.secret_access_key.expose(), token, None, "understudy-config")
            .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&aws.region)
        .name(service)
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| bad_config(format!("cannot sign: {e}")))?
        .into();
    // Headers whose values are not visible ASCII cannot be signed; they are sent unsigned.
    let pairs = headers.iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
    let signable = SignableRequest::new(method, url, pairs, SignableBody::Bytes(body))
        .map_err(|e| bad_config(format!("cannot sign a request to {url:?}: {e}")))?;
    let (instructions, _) =
        sigv4_sign(signable, &params).map_err(|e| bad_config(format!("SigV4 signing failed: {e}")))?.into_parts();
    let (added, _query) = instructions.into_parts();
    for header in added {
        let name = HeaderName::from_bytes(header.name().as_bytes())
            .map_err(|_| bad_config("the signer produced an invalid header name".into()))?;
        let mut value = HeaderValue::from_str(header.value()).map_err(|_| {
            Failure::new(FailureClass::Auth, "the AWS credentials contain characters not allowed in a header")
                .detail("bad_api_key")
        })?;
        value.set_sensitive(header.sensitive() || name == http::header::AUTHORIZATION);
        headers.insert(name, value);
    }
    Ok(())
}

fn credentials_present(aws: &AwsSettings) -> Result<(), Failure> {
    // An unset session token variable just means long-term credentials.
    let missing: Vec<&str> = [&aws.access_key_id, &aws.secret_access_key]
        .into_iter()
        .flat_map(|s| s.missing_vars().iter().map(String::as_str))
        .collect();
    if !missing.is_empty() {
        return Err(Failure::new(
            FailureClass::Auth,
            format!("no AWS credentials: environment variable {} is not set", missing.join(", ")),
        )
        .detail("missing_credentials"));
    }
    if aws.access_key_id.is_empty() || aws.secret_access_key.is_empty() {
        return Err(Failure::new(
            FailureClass::Auth,
            "no AWS credentials: set aws_access_key_id and aws_secret_access_key (or AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY), or a Bedrock API key as api_key",
        )
        .detail("missing_credentials"));
    }
    Ok(())
}

fn bad_config(message: String) -> Failure {
    Failure::new(FailureClass::DeploymentInvalid, message).detail("bad_config")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Secret;

    /// 2015-08-30T12:36:00Z, the time of AWS's published SigV4 test suite.
    fn suite_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn suite_credentials(token: &str) -> AwsSettings {
        AwsSettings {
            region: "us-east-1".into(),
            access_key_id: Secret::new("AKIDEXAMPLE"),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: Secret::new(token),
        }
    }

    const TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

    /// AWS SigV4 test suite, `post-vanilla`.
    #[test]
    fn published_vector_post_vanilla() {
        let mut h = HeaderMap::new();
        sign(&suite_credentials(""), "service", "POST", "https://example.amazonaws.com/", &mut h, b"", suite_time())
            .unwrap();
        assert_eq!(h["x-amz-date"], "20150830T123600Z");
        assert_eq!(
            h["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
    }

    /// AWS SigV4 test suite, `post-sts-header-before`: the session token is signed.
    #[test]
    fn published_vector_with_session_token() {
        let mut h = HeaderMap::new();
        let aws = suite_credentials(TOKEN);
        sign(&aws, "service", "POST", "https://example.amazonaws.com/", &mut h, b"", suite_time()).unwrap();
        assert_eq!(h["x-amz-security-token"], TOKEN);
        assert!(h["x-amz-security-token"].is_sensitive());
        assert!(h["authorization"].is_sensitive());
        assert_eq!(
            h["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-security-token, \
             Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
        );
    }

    #[test]
    fn the_body_and_the_path_are_covered() {
        let aws = suite_credentials("");
        let signature = |url: &str, body: &[u8]| {
            let mut h = HeaderMap::new();
            h.insert("content-type", HeaderValue::from_static("application/json"));
            sign(&aws, "bedrock", "POST", url, &mut h, body, suite_time()).unwrap();
            h["authorization"].to_str().unwrap().to_string()
        };
        let a = signature("https://bedrock-runtime.us-east-1.amazonaws.com/model/m%3A0/converse", b"{}");
        assert_ne!(a, signature("https://bedrock-runtime.us-east-1.amazonaws.com/model/m%3A0/converse", b"{ }"));
        assert_ne!(a, signature("https://bedrock-runtime.us-east-1.amazonaws.com/model/m%3A1/converse", b"{}"));
        assert!(a.contains("/us-east-1/bedrock/aws4_request"));
        assert!(a.contains("SignedHeaders=content-type;host;x-amz-date,"));
    }

    #[test]
    fn refuses_without_credentials_or_host() {
        let mut aws = suite_credentials("");
        let mut h = HeaderMap::new();
        for url in ["no-host", "/path", "ftp://x.test/", "http:///x"] {
            let f = sign(&aws, "bedrock", "POST", url, &mut h, b"", suite_time()).unwrap_err();
            assert_eq!(f.detail, Some("bad_config"), "{url}");
        }
        aws.access_key_id = Secret::default();
        let f = sign(&aws, "bedrock", "POST", "https://x.test/", &mut h, b"", suite_time()).unwrap_err();
        assert_eq!((f.class, f.detail), (FailureClass::Auth, Some("missing_credentials")));
        assert!(h.is_empty());
    }
}
