//! The scanner against a real clamd. scripts/test starts one (`ensure_clamd`
//! in scripts/services.sh) with a one-line database: the EICAR test file's
//! MD5. Its address comes from `TEST_CLAMD_URL` (TCP) and
//! `TEST_CLAMD_UNIX_URL` (its unix socket); without them the tests fail, they
//! are never skipped.

use std::time::{Duration, Instant};

use ieum_clamd::{ClamdAddress, ClamdConfig, ClamdScanner};
use ieum_domain::DomainError;
use ieum_domain::ports::{ScanVerdict, VirusScanner};

/// The EICAR anti-virus test file: 68 bytes every scanner reports.
const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// The test clamd's `StreamMaxLength` (`CLAMD_STREAM_MAX` in scripts/services.sh).
const CLAMD_STREAM_MAX: u64 = 1024 * 1024;

fn address_from_env(variable: &str) -> ClamdAddress {
    let url = std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is not set. Run scripts/test, or `. scripts/services.sh && ensure_clamd` \
             and export TEST_CLAMD_URL=$CLAMD_URL_FOR_TESTS TEST_CLAMD_UNIX_URL=$CLAMD_UNIX_URL_FOR_TESTS. \
             The clamd tests are never skipped."
        )
    });
    url.parse()
        .unwrap_or_else(|error| panic!("{variable}: {error}"))
}

fn config(address: ClamdAddress) -> ClamdConfig {
    ClamdConfig {
        max_stream_bytes: CLAMD_STREAM_MAX,
        scan_timeout: Duration::from_secs(30),
        ..ClamdConfig::new(address)
    }
}

fn scanner(config: ClamdConfig) -> ClamdScanner {
    ClamdScanner::new(config).expect("a valid configuration")
}

fn tcp_clamd() -> ClamdScanner {
    scanner(config(address_from_env("TEST_CLAMD_URL")))
}

/// An address where nothing listens: a port the system just handed out and
/// took back.
fn closed_port() -> ClamdAddress {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = listener.local_addr().expect("its address").port();
    drop(listener);
    ClamdAddress::Tcp(format!("127.0.0.1:{port}"))
}

fn assert_too_large(result: Result<ScanVerdict, DomainError>) -> String {
    match result {
        Err(DomainError::Invalid {
            code: "too_large",
            message,
        }) => message,
        other => panic!("expected too_large, got {other:?}"),
    }
}

fn assert_unavailable<T: std::fmt::Debug>(result: Result<T, DomainError>) -> String {
    match result {
        Err(DomainError::Unavailable(message)) => message,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_clean_payload_is_clean() {
    let verdict = tcp_clamd().scan(b"hello, this is a photo of a cat").await;
    assert_eq!(verdict, Ok(ScanVerdict::Clean));
}

#[tokio::test]
async fn an_empty_payload_is_clean() {
    assert_eq!(tcp_clamd().scan(b"").await, Ok(ScanVerdict::Clean));
}

#[tokio::test]
async fn the_eicar_test_file_is_infected_with_a_signature_name() {
    match tcp_clamd().scan(EICAR).await {
        Ok(ScanVerdict::Infected { signature }) => assert!(
            signature.to_ascii_lowercase().contains("eicar"),
            "signature {signature:?}"
        ),
        other => panic!("expected Infected, got {other:?}"),
    }
}

#[tokio::test]
async fn the_eicar_test_file_sent_in_tiny_chunks_is_still_found() {
    let scanner = scanner(ClamdConfig {
        chunk_bytes: 7,
        ..config(address_from_env("TEST_CLAMD_URL"))
    });
    assert!(matches!(
        scanner.scan(EICAR).await,
        Ok(ScanVerdict::Infected { .. })
    ));
}

#[tokio::test]
async fn a_payload_of_exactly_the_limit_is_scanned() {
    let payload = vec![b'a'; CLAMD_STREAM_MAX as usize];
    assert_eq!(tcp_clamd().scan(&payload).await, Ok(ScanVerdict::Clean));
}

#[tokio::test]
async fn a_payload_over_the_limit_is_refused_before_connecting() {
    // Nothing listens there: a scanner that tried to send would be Unavailable.
    let scanner = scanner(config(closed_port()));
    let payload = vec![b'a'; CLAMD_STREAM_MAX as usize + 1];
    let message = assert_too_large(scanner.scan(&payload).await);
    assert!(message.contains("nothing was sent"), "{message}");
}

#[tokio::test]
async fn a_stream_over_clamds_own_limit_is_too_large() {
    // Configured above clamd's StreamMaxLength: clamd itself refuses the
    // stream, answers and closes. At 16 times its limit our write breaks
    // (EPIPE) before the stream ends; the reply must win over the broken pipe.
    let scanner = scanner(ClamdConfig {
        max_stream_bytes: 32 * CLAMD_STREAM_MAX,
        ..config(address_from_env("TEST_CLAMD_URL"))
    });
    let payload = vec![b'a'; 16 * CLAMD_STREAM_MAX as usize];
    let message = assert_too_large(scanner.scan(&payload).await);
    assert!(message.contains("StreamMaxLength"), "{message}");
}

#[tokio::test]
async fn clamd_answers_ping() {
    assert_eq!(tcp_clamd().ping().await, Ok(()));
}

#[tokio::test]
async fn the_unix_socket_pings_and_scans() {
    let scanner = scanner(config(address_from_env("TEST_CLAMD_UNIX_URL")));
    assert_eq!(scanner.ping().await, Ok(()));
    assert_eq!(scanner.scan(b"clean").await, Ok(ScanVerdict::Clean));
    assert!(matches!(
        scanner.scan(EICAR).await,
        Ok(ScanVerdict::Infected { .. })
    ));
}

#[tokio::test]
async fn an_absent_clamd_is_unavailable_within_the_connect_timeout() {
    let connect_timeout = Duration::from_secs(1);
    let scanner = scanner(ClamdConfig {
        connect_timeout,
        ..config(closed_port())
    });
    let started = Instant::now();
    let message = assert_unavailable(scanner.scan(EICAR).await);
    assert!(
        started.elapsed() < connect_timeout,
        "{:?}",
        started.elapsed()
    );
    assert!(message.contains("cannot connect"), "{message}");
    assert_unavailable(scanner.ping().await);
}

#[tokio::test]
async fn a_missing_unix_socket_is_unavailable() {
    let scanner = scanner(config(ClamdAddress::Unix(
        std::env::temp_dir().join("ieum-clamd-test-no-such.sock"),
    )));
    assert_unavailable(scanner.scan(b"clean").await);
}

#[tokio::test]
async fn a_clamd_that_never_answers_is_unavailable_after_the_scan_timeout() {
    // Accepts and then says nothing, like a hung daemon.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = ClamdAddress::Tcp(listener.local_addr().expect("address").to_string());
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection);
        }
    });
    let scan_timeout = Duration::from_millis(300);
    let scanner = scanner(ClamdConfig {
        scan_timeout,
        ..config(address)
    });
    let started = Instant::now();
    let message = assert_unavailable(scanner.scan(b"clean").await);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= scan_timeout && elapsed < 10 * scan_timeout,
        "{elapsed:?}"
    );
    assert!(message.contains("did not answer"), "{message}");
    silent.abort();
}
