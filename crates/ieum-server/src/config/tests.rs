//! Unit tests of the configuration layers and the development secret.

use super::*;
use clap::Parser;

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("ieum-cfg-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn production_refuses_missing_or_development_secrets() {
    let base = Settings {
        env: Some(Env::Production),
        data_dir: Some(temp_dir()),
        ..Default::default()
    };
    let err = Config::resolve(base.clone()).unwrap_err().to_string();
    assert!(err.contains("IEUM_JWT_SECRET"), "{err}");
    for bad in ["short", "dev-secret-dev-secret-dev-secret-dev-secret"] {
        let s = Settings {
            jwt_secret: Some(bad.into()),
            ..base.clone()
        };
        let err = Config::resolve(s).unwrap_err().to_string();
        assert!(err.contains("openssl rand -hex 32"), "{err}");
    }
    let ok = Settings {
        jwt_secret: Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()),
        ..base
    };
    assert!(matches!(
        Config::resolve(ok).unwrap().jwt_secret,
        JwtSecret::Configured(_)
    ));
}

#[test]
fn development_secret_is_made_once_and_kept() {
    let dir = temp_dir();
    let s = Settings {
        data_dir: Some(dir.clone()),
        ..Default::default()
    };
    let a = Config::resolve(s.clone()).unwrap();
    let b = Config::resolve(s).unwrap();
    assert_eq!(a.jwt_secret.bytes(), b.jwt_secret.bytes());
    assert!(a.jwt_secret.bytes().len() >= 32);
    assert!(a.database_url.starts_with("sqlite://"));
    assert_eq!(a.addr.to_string(), "127.0.0.1:8080");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn layers_merge_flags_over_file() {
    let dir = temp_dir();
    let file = dir.join("ieum.toml");
    std::fs::write(
        &file,
        "addr = \"0.0.0.0:9000\"\naccess_token_ttl_secs = 60\nenv = \"development\"\n",
    )
    .unwrap();
    let cli = Settings {
        config: Some(file.clone()),
        access_token_ttl_secs: Some(120),
        data_dir: Some(dir.clone()),
        ..Default::default()
    };
    let c = Config::load(cli).unwrap();
    assert_eq!(c.addr.to_string(), "0.0.0.0:9000");
    assert_eq!(c.access_token_ttl_secs, 120);
    std::fs::write(&file, "no_such_key = 1\n").unwrap();
    let err = Config::load(Settings {
        config: Some(file),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("no_such_key"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn settings_parse_before_and_after_the_subcommand() {
    for args in [
        ["ieum", "migrate", "--data-dir", "/tmp/x"],
        ["ieum", "--data-dir", "/tmp/x", "migrate"],
    ] {
        let cli = Cli::try_parse_from(args).unwrap();
        assert_eq!(cli.command, Some(Command::Migrate), "{args:?}");
        assert_eq!(
            cli.settings.data_dir,
            Some(PathBuf::from("/tmp/x")),
            "{args:?}"
        );
    }
    let cli = Cli::try_parse_from(["ieum", "serve", "--addr", "127.0.0.1:9000"]).unwrap();
    assert_eq!(cli.settings.addr, Some("127.0.0.1:9000".parse().unwrap()));
}

#[test]
fn the_start_log_shows_no_credentials() {
    assert_eq!(
        without_credentials("postgres://ieum:s3cret@db:5432/ieum"),
        "postgres://db:5432/ieum"
    );
    assert_eq!(
        without_credentials("redis://:pw@redis:6379/0"),
        "redis://redis:6379/0"
    );
    assert_eq!(
        without_credentials("sqlite:///data/ieum.db?mode=rwc"),
        "sqlite:///data/ieum.db?mode=rwc"
    );
}

#[test]
fn file_urls_default_to_the_listen_address_and_refuse_other_schemes() {
    let base = Settings {
        data_dir: Some(temp_dir()),
        jwt_secret: Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()),
        addr: Some(([127, 0, 0, 1], 9000).into()),
        ..Default::default()
    };
    assert_eq!(
        Config::resolve(base.clone()).unwrap().public_url,
        "http://127.0.0.1:9000"
    );
    let with = |url: &str| Settings {
        public_url: Some(url.into()),
        ..base.clone()
    };
    assert_eq!(
        Config::resolve(with("https://chat.example.com/"))
            .unwrap()
            .public_url,
        "https://chat.example.com"
    );
    for bad in ["chat.example.com", "ftp://x", "https://", "https://x/?a=1"] {
        let err = Config::resolve(with(bad)).unwrap_err().to_string();
        assert!(err.contains("IEUM_PUBLIC_URL"), "{bad}: {err}");
    }
}

#[test]
fn clamd_is_optional_and_checked_when_named() {
    let base = Settings {
        data_dir: Some(temp_dir()),
        jwt_secret: Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()),
        ..Default::default()
    };
    assert!(Config::resolve(base.clone()).unwrap().clamd.is_none());
    let named = Settings {
        clamd_url: Some("tcp://localhost:3310".into()),
        ..base.clone()
    };
    assert!(Config::resolve(named).unwrap().clamd.is_some());
    let bad = Settings {
        clamd_url: Some("localhost:3310".into()),
        ..base
    };
    let err = Config::resolve(bad).unwrap_err().to_string();
    assert!(err.contains("IEUM_CLAMD_URL"), "{err}");
}

#[test]
fn the_admin_grant_subcommand_names_a_user_and_a_role() {
    let cli =
        Cli::try_parse_from(["ieum", "admin", "grant", "alice", "--data-dir", "/tmp/x"]).unwrap();
    assert_eq!(
        cli.command,
        Some(Command::Admin(crate::config::AdminCommand::Grant {
            username: "alice".into(),
            role: "admin".into(),
        }))
    );
    let cli =
        Cli::try_parse_from(["ieum", "admin", "grant", "bob", "--role", "moderator"]).unwrap();
    assert!(matches!(
        cli.command,
        Some(Command::Admin(crate::config::AdminCommand::Grant { role, .. })) if role == "moderator"
    ));
    assert!(
        Cli::try_parse_from(["ieum", "admin", "grant"]).is_err(),
        "a username is needed"
    );
}

/// IEUM_EPHEMERAL: a temporary data dir (with its development secret), and
/// none left behind when the configuration is refused after it was made.
#[test]
fn an_ephemeral_data_dir_is_temporary_and_goes_with_a_refused_configuration() {
    let ephemeral = || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("ieum-ephemeral-")
            })
            .count()
    };
    let before = ephemeral();
    let refused = Settings {
        ephemeral: Some(true),
        login_window_secs: Some(0),
        ..Default::default()
    };
    let err = Config::resolve(refused).unwrap_err().to_string();
    assert!(err.contains("login_window_secs"), "{err}");
    assert_eq!(ephemeral(), before, "the refused start's dir is gone");
    let config = Config::resolve(Settings {
        ephemeral: Some(true),
        ..Default::default()
    })
    .unwrap();
    assert!(config.ephemeral && config.data_dir.starts_with(std::env::temp_dir()));
    assert!(config.data_dir.join(DEV_SECRET_FILE).is_file());
    std::fs::remove_dir_all(&config.data_dir).unwrap();
    let both = Settings {
        ephemeral: Some(true),
        database_url: Some("postgres://x@127.0.0.1/x".into()),
        ..Default::default()
    };
    let err = Config::resolve(both).unwrap_err().to_string();
    assert!(err.contains("IEUM_EPHEMERAL"), "{err}");
}
