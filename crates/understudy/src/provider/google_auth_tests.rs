use std::sync::atomic::AtomicUsize;

use ring::signature::{KeyPair, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use serde_json::Value;

use super::*;

/// A test-only key generated for this repository (not a real credential).
const TEST_KEY: &str = include_str!("../../tests/fixtures/vertex-test-key.pem");

fn key_file(token_uri: Option<&str>) -> KeyFile {
    KeyFile {
        kind: Some("service_account".into()),
        client_email: "svc@proj.iam.gserviceaccount.com".into(),
        private_key: TEST_KEY.into(),
        private_key_id: Some("kid-123".into()),
        token_uri: token_uri.map(str::to_string),
    }
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn the_assertion_is_an_rs256_jwt_with_the_documented_claims() {
    let jwt = key_file(Some("https://oauth2.example/token")).assertion(CLOUD_PLATFORM, 1_700_000_000).unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(decode_part(parts[0]), json!({"alg": "RS256", "typ": "JWT", "kid": "kid-123"}));
    assert_eq!(
        decode_part(parts[1]),
        json!({"iss": "svc@proj.iam.gserviceaccount.com", "scope": CLOUD_PLATFORM,
               "aud": "https://oauth2.example/token", "iat": 1_700_000_000u64, "exp": 1_700_003_600u64})
    );
    // The signature verifies against the key's public half.
    let (_, der) = pem_to_der(TEST_KEY).unwrap();
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
    let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref().to_vec());
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    public.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature).unwrap();
    assert!(public.verify(b"tampered", &signature).is_err());
}

#[test]
fn key_files_are_checked() {
    let ok = json!({"type": "service_account", "client_email": "a@b", "private_key": TEST_KEY,
                    "private_key_id": "k", "token_uri": "https://t/token"});
    let key = KeyFile::parse(ok.to_string().as_bytes()).unwrap();
    assert_eq!(key.token_uri(), "https://t/token");
    let no_uri = json!({"client_email": "a@b", "private_key": TEST_KEY});
    assert_eq!(KeyFile::parse(no_uri.to_string().as_bytes()).unwrap().token_uri(), DEFAULT_TOKEN_URI);

    let user = json!({"type": "authorized_user", "client_email": "a@b", "private_key": "x"});
    let err = KeyFile::parse(user.to_string().as_bytes()).err().unwrap();
    assert_eq!((err.class, err.detail), (FailureClass::Auth, Some("bad_credentials")));
    assert!(err.message.contains("authorized_user"));
    let missing = KeyFile::parse(br#"{"client_email":"a@b"}"#).err().unwrap();
    assert!(missing.message.contains("private_key"), "{}", missing.message);
    assert_eq!(KeyFile::parse(b"not json").err().unwrap().class, FailureClass::Auth);

    let bad_pem = KeyFile { private_key: "garbage".into(), ..key_file(None) };
    assert_eq!(bad_pem.assertion(CLOUD_PLATFORM, 0).unwrap_err().detail, Some("bad_credentials"));
    let not_rsa = KeyFile {
        private_key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into(),
        ..key_file(None)
    };
    let err = not_rsa.assertion(CLOUD_PLATFORM, 0).unwrap_err();
    assert_eq!(err.class, FailureClass::Auth);
    assert!(!err.message.contains("AAAA"));
}

#[test]
fn token_answers_are_classified() {
    let ok = token_from_answer(200, br#"{"access_token":"ya29.abc","expires_in":3599,"token_type":"Bearer"}"#).unwrap();
    assert_eq!((ok.token.expose(), ok.lifetime), ("ya29.abc", Duration::from_secs(3599)));
    let no_expiry = token_from_answer(200, br#"{"access_token":"t"}"#).unwrap();
    assert_eq!(no_expiry.lifetime, LIFETIME);

    let refused = token_from_answer(400, br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#)
        .unwrap_err();
    assert_eq!(
        (refused.class, refused.detail, refused.status),
        (FailureClass::Auth, Some("token_rejected"), Some(400))
    );
    assert!(refused.message.contains("invalid_grant: Invalid JWT Signature."));
    let unauthorized = token_from_answer(401, br#"{"error":"invalid_client"}"#).unwrap_err();
    assert_eq!(unauthorized.class, FailureClass::Auth);

    assert_eq!(token_from_answer(503, b"<html>").unwrap_err().class, FailureClass::Overloaded);
    assert_eq!(token_from_answer(429, b"{}").unwrap_err().class, FailureClass::RateLimited);
    let empty = token_from_answer(200, br#"{"access_token":""}"#).unwrap_err();
    assert_eq!(empty.class, FailureClass::InvalidResponse);
}

#[test]
fn refresh_leaves_the_google_margin_or_half_the_life() {
    assert_eq!(refresh_after(Duration::from_secs(3600)), Duration::from_secs(3375));
    assert_eq!(refresh_after(Duration::from_secs(3599)), Duration::from_secs(3374));
    assert_eq!(refresh_after(Duration::from_secs(2)), Duration::from_secs(1));
    assert_eq!(refresh_after(Duration::from_secs(300)), Duration::from_secs(150));
}

/// A fetcher that counts its calls, takes `delay`, and hands out `t1`, `t2`...
fn counting(
    calls: &Arc<AtomicUsize>,
    delay: Duration,
    fail: bool,
) -> impl FnOnce() -> BoxFuture<'static, Result<Fetched, Failure>> {
    let calls = calls.clone();
    move || {
        async move {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(delay).await;
            if fail {
                return Err(Failure::new(FailureClass::Connect, "down").detail("token_endpoint"));
            }
            Ok(Fetched { token: Secret::new(format!("t{n}")), lifetime: LIFETIME })
        }
        .boxed()
    }
}

#[tokio::test(start_paused = true)]
async fn a_token_is_reused_and_refreshed_3m45s_before_expiry() {
    let cache = TokenCache::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let get = || cache.get(counting(&calls, Duration::ZERO, false));
    assert_eq!(get().await.unwrap().expose(), "t1");
    assert_eq!(get().await.unwrap().expose(), "t1");
    tokio::time::advance(Duration::from_secs(3374)).await;
    assert_eq!(get().await.unwrap().expose(), "t1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(get().await.unwrap().expose(), "t2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_fetch() {
    let cache = Arc::new(TokenCache::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (cache, calls) = (cache.clone(), calls.clone());
        tasks.push(tokio::spawn(async move { cache.get(counting(&calls, Duration::from_secs(1), false)).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().expose(), "t1");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_that_gives_up_does_not_cancel_the_fetch() {
    let cache = TokenCache::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let slow =
        tokio::time::timeout(Duration::from_millis(100), cache.get(counting(&calls, Duration::from_secs(1), false)));
    assert!(slow.await.is_err());
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The fetch finished on its own; the next caller gets its token without a second fetch.
    assert_eq!(cache.get(counting(&calls, Duration::ZERO, false)).await.unwrap().expose(), "t1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_using_the_old_token_until_it_expires() {
    let cache = TokenCache::default();
    let calls = Arc::new(AtomicUsize::new(0));
    assert_eq!(cache.get(counting(&calls, Duration::ZERO, false)).await.unwrap().expose(), "t1");
    tokio::time::advance(Duration::from_secs(3500)).await;
    assert_eq!(cache.get(counting(&calls, Duration::ZERO, true)).await.unwrap().expose(), "t1");
    tokio::time::advance(Duration::from_secs(200)).await;
    let err = cache.get(counting(&calls, Duration::ZERO, true)).await.unwrap_err();
    assert_eq!(err.detail, Some("token_endpoint"));
    // After a failure with nothing cached, the next caller tries again.
    assert_eq!(cache.get(counting(&calls, Duration::ZERO, false)).await.unwrap().expose(), "t4");
}

#[tokio::test]
async fn an_unreadable_key_file_is_an_auth_failure() {
    let source = ServiceAccount::new("/nonexistent/understudy-key.json", CLOUD_PLATFORM);
    let err = source.token().await.unwrap_err();
    assert_eq!((err.class, err.detail), (FailureClass::Auth, Some("bad_credentials")));
    assert!(format!("{source:?}").contains("/nonexistent/understudy-key.json"));
}

#[test]
fn one_key_file_has_one_shared_source() {
    let a = ServiceAccount::shared("/tmp/shared-key-test.json", CLOUD_PLATFORM);
    let b = ServiceAccount::shared("/tmp/shared-key-test.json", CLOUD_PLATFORM);
    let c = ServiceAccount::shared("/tmp/other-key-test.json", CLOUD_PLATFORM);
    assert!(Arc::ptr_eq(&a, &b));
    assert!(!Arc::ptr_eq(&a, &c));
}

proptest::proptest! {
    #[test]
    fn parsing_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512), status in 100u16..600) {
        let _ = KeyFile::parse(&bytes);
        let _ = token_from_answer(status, &bytes);
        let _ = pem_to_der(&String::from_utf8_lossy(&bytes));
    }
}
