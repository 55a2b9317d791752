use super::*;

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn file() -> Source {
    Source::File(PathBuf::from("/data/vigil.toml"))
}

#[test]
fn default_file_equals_built_in_defaults_and_names_every_key() {
    let from_file = load_from_str(DEFAULT_CONFIG, file(), no_env()).unwrap();
    let from_nothing = load_from_str("", file(), no_env()).unwrap();
    assert_eq!(from_file.config, from_nothing.config);
    let table: toml::Table = DEFAULT_CONFIG.parse().unwrap();
    for key in KEYS {
        let (section, name) = key.path.split_once('.').unwrap();
        let written = &table[section][name];
        assert_eq!(
            written,
            &env_value(key.default),
            "{} in default.toml",
            key.path
        );
        assert_eq!(
            key.env,
            format!("VIGIL_{}", key.path.replace('.', "_").to_uppercase()),
            "env names follow VIGIL_<SECTION>_<KEY>"
        );
    }
}

#[test]
fn environment_overrides_the_file() {
    let text = "[log]\nlevel = \"warn\"\n";
    let loaded = load_from_str(
        text,
        file(),
        env(&[("VIGIL_LOG_LEVEL", "debug"), ("VIGIL_LOG_FORMAT", "json")]),
    )
    .unwrap();
    assert_eq!(loaded.config.log.level, LogLevel::Debug);
    assert_eq!(loaded.config.log.format, LogFormat::Json);
    assert!(loaded.warnings.is_empty());
}

#[test]
fn invalid_value_names_key_value_source_and_problem() {
    let err = load_from_str("[log]\nlevel = \"verbose\"\n", file(), no_env()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`log.level` = \"verbose\" (from /data/vigil.toml): expected one of: trace, debug, info, warn, error"
    );
    let err = load_from_str("", file(), env(&[("VIGIL_LOG_FORMAT", "xml")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`log.format` = \"xml\" (from environment variable VIGIL_LOG_FORMAT): expected one of: human, json"
    );
    let err = load_from_str("[log]\nlevel = 3\n", file(), no_env()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`log.level` = 3 (from /data/vigil.toml): expected a string, one of: trace, debug, info, warn, error"
    );
}

#[test]
fn unknown_keys_are_refused_with_a_suggestion() {
    let err = load_from_str("[log]\nlevle = \"info\"\n", file(), no_env()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown key `log.levle` in /data/vigil.toml; did you mean `log.level`?"
    );
    let err = load_from_str("[database]\nurl = \"x\"\n", file(), no_env()).unwrap_err();
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, .. } if key == "database"),
        "{err}"
    );
    let err = load_from_str("log = 5\n", file(), no_env()).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err}");
}

#[test]
fn syntax_errors_give_line_and_column() {
    let err = load_from_str("[log\nlevel = ", file(), no_env()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("/data/vigil.toml is not valid TOML"),
        "{message}"
    );
    assert!(message.contains("line 1"), "{message}");
}

#[test]
fn unknown_vigil_variables_warn_with_a_suggestion_and_others_are_ignored() {
    let loaded = load_from_str(
        "",
        file(),
        env(&[
            ("VIGIL_LOG_LEVLE", "debug"),
            ("VIGIL_DATA_DIR", "/tmp"),
            ("HOME", "/root"),
        ]),
    )
    .unwrap();
    assert_eq!(loaded.config.log.level, LogLevel::Info);
    assert_eq!(
        loaded.warnings,
        vec![
            "environment variable VIGIL_LOG_LEVLE is not a Vigil setting and is ignored; did you mean `VIGIL_LOG_LEVEL`?"
                .to_owned()
        ]
    );
}

#[test]
fn env_values_are_toml_when_they_parse_and_strings_otherwise() {
    assert_eq!(env_value("30"), toml::Value::Integer(30));
    assert_eq!(env_value("debug"), toml::Value::String("debug".into()));
    assert_eq!(
        env_value("\"quoted\""),
        toml::Value::String("quoted".into())
    );
    assert_eq!(env_value("a = b"), toml::Value::String("a = b".into()));
}

#[test]
fn load_reads_the_data_directory_and_reports_missing_or_oversized_files() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(dir.path(), no_env()).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");

    std::fs::write(dir.path().join(CONFIG_FILE), DEFAULT_CONFIG).unwrap();
    assert_eq!(
        load(dir.path(), no_env()).unwrap().config.log.format,
        LogFormat::Human
    );

    let big = vec![b'#'; usize::try_from(MAX_CONFIG_BYTES).unwrap() + 10];
    std::fs::write(dir.path().join(CONFIG_FILE), big).unwrap();
    assert!(matches!(
        load(dir.path(), no_env()).unwrap_err(),
        ConfigError::TooLarge { .. }
    ));
}

#[test]
fn hub_and_pki_keys_are_typed_and_checked() {
    let loaded = load_from_str(
        "[hub]\nhostnames = [\"Hub.Ward7.example\", \"10.0.0.5\", \"localhost\"]\nhttps_listen = \"[::]:9443\"\n[pki]\ndevice_certificate_days = 7\n",
        file(),
        env(&[("VIGIL_PKI_ENROLMENT_TOKEN_HOURS", "12")]),
    )
    .unwrap();
    let hub = &loaded.config.hub;
    assert_eq!(
        hub.hostnames,
        ["hub.ward7.example", "10.0.0.5", "localhost"]
    );
    assert_eq!(hub.https_listen.port(), 9443);
    assert_eq!(
        hub.certificate_names(),
        [
            "localhost",
            "127.0.0.1",
            "::1",
            "hub.ward7.example",
            "10.0.0.5"
        ]
    );
    assert_eq!(loaded.config.pki.device_certificate_days, 7);
    assert_eq!(loaded.config.pki.enrolment_token_hours, 12);
    assert_eq!(hub.http_idle_seconds, 90);
    let idle = |value: &str| {
        load_from_str("", file(), env(&[("VIGIL_HUB_HTTP_IDLE_SECONDS", value)]))
            .map(|loaded| loaded.config.hub.http_idle_seconds)
            .map_err(|e| e.to_string())
    };
    assert_eq!(idle("400"), Ok(400));
    for refused in ["9", "3601"] {
        assert!(
            idle(refused)
                .unwrap_err()
                .contains("expected a whole number from 10 to 3600"),
            "{refused}"
        );
    }

    for (text, message) in [
        (
            "[pki]\ndevice_certificate_days = 0\n",
            "`pki.device_certificate_days` = 0 (from /data/vigil.toml): expected a whole number from 1 to 397",
        ),
        (
            "[pki]\ndevice_certificate_days = \"30\"\n",
            "`pki.device_certificate_days` = \"30\" (from /data/vigil.toml): expected a whole number from 1 to 397",
        ),
        (
            "[hub]\nhttps_listen = \"localhost:8443\"\n",
            "`hub.https_listen` = \"localhost:8443\" (from /data/vigil.toml): expected an IP address and port, e.g. \"0.0.0.0:8443\" or \"[::]:8443\"",
        ),
        (
            "[hub]\nhostnames = [\"bad_name!\"]\n",
            "`hub.hostnames` = [\"bad_name!\"] (from /data/vigil.toml): \"bad_name!\" is not a DNS name or IP address; expected a list of DNS names or IP addresses, e.g. [\"hub.ward7.example\", \"10.0.0.5\"]",
        ),
        (
            "[hub]\norganization = \"\"\n",
            "`hub.organization` = \"\" (from /data/vigil.toml): expected 1 to 64 characters without control characters",
        ),
    ] {
        assert_eq!(
            load_from_str(text, file(), no_env())
                .unwrap_err()
                .to_string(),
            message
        );
    }
    let err = load_from_str(
        "",
        file(),
        env(&[("VIGIL_HUB_HOSTNAMES", "[\"a.example\", 5]")]),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("(from environment variable VIGIL_HUB_HOSTNAMES)"),
        "{err}"
    );
}

#[test]
fn access_and_fhir_keys_are_typed_and_checked() {
    let loaded = load_from_str(
        "[access]\nidle_minutes = 5\n[fhir]\nmrn_system = \"urn:oid:2.16.840.1.113883.19.5\"\n",
        file(),
        no_env(),
    )
    .unwrap();
    assert_eq!(loaded.config.access.idle_minutes, 5);
    assert_eq!(loaded.config.access.session_hours, 8);
    assert_eq!(
        loaded.config.fhir.mrn_system,
        "urn:oid:2.16.840.1.113883.19.5"
    );
    let err = load_from_str("[access]\nidle_minutes = 0\n", file(), no_env()).unwrap_err();
    assert!(err.to_string().contains("access.idle_minutes"), "{err}");
    let err = load_from_str("[access]\nlockout_failures = 50\n", file(), no_env()).unwrap_err();
    assert!(err.to_string().contains("from 3 to 20"), "{err}");
    for bad in ["mrn", "1x:abc", "urn:", "urn:has space", ""] {
        let text = format!("[fhir]\nmrn_system = \"{bad}\"\n");
        let err = load_from_str(&text, file(), no_env()).unwrap_err();
        assert!(err.to_string().contains("absolute URI"), "{bad}: {err}");
    }
}

fn oidc_env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs = vec![
        (
            "VIGIL_OIDC_ISSUER",
            "https://login.hospital.example/realms/staff",
        ),
        ("VIGIL_OIDC_CLIENT_ID", "vigil-hub"),
        ("VIGIL_OIDC_CLIENT_SECRET", "s3cret-value"),
        (
            "VIGIL_OIDC_REDIRECT_URI",
            "https://hub.ward7.example:8443/api/v1/oidc/callback",
        ),
    ];
    pairs.extend_from_slice(extra);
    env(&pairs)
}

#[test]
fn oidc_is_off_by_default_and_typed_when_configured() {
    let off = load_from_str("", file(), no_env()).unwrap().config.oidc;
    assert!(!off.enabled());
    assert_eq!(off.username_claim, UsernameClaim::PreferredUsername);

    let loaded = load_from_str(
        "",
        file(),
        oidc_env(&[
            ("VIGIL_OIDC_USERNAME_CLAIM", "email"),
            ("VIGIL_OIDC_USERNAME_DOMAIN", "Hospital.Example"),
            ("VIGIL_OIDC_CA_FILE", "/etc/vigil/idp-ca.pem"),
        ]),
    )
    .unwrap();
    let oidc = &loaded.config.oidc;
    assert!(oidc.enabled());
    assert_eq!(oidc.client_id, "vigil-hub");
    assert_eq!(oidc.client_secret.expose(), "s3cret-value");
    assert_eq!(oidc.username_claim, UsernameClaim::Email);
    assert_eq!(oidc.username_domain, "hospital.example");
    assert_eq!(
        oidc.ca_file.as_deref(),
        Some(Path::new("/etc/vigil/idp-ca.pem"))
    );
}

#[test]
fn the_client_secret_is_never_shown() {
    let loaded = load_from_str("", file(), oidc_env(&[])).unwrap();
    assert!(!format!("{:?}", loaded.config).contains("s3cret"));
    let shown = loaded
        .effective
        .iter()
        .find(|e| e.key == "oidc.client_secret")
        .unwrap();
    assert_eq!(shown.value, REDACTED);
    // An unset secret is shown as unset.
    let loaded = load_from_str("", file(), no_env()).unwrap();
    let shown = loaded
        .effective
        .iter()
        .find(|e| e.key == "oidc.client_secret")
        .unwrap();
    assert_eq!(shown.value, "\"\"");
    // A refused secret is not repeated either.
    let err = load_from_str(
        "",
        file(),
        oidc_env(&[("VIGIL_OIDC_CLIENT_SECRET", "s3cret\u{7}bell")]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`oidc.client_secret` = \"[redacted]\" (from environment variable VIGIL_OIDC_CLIENT_SECRET): expected a string of 1 to 512 characters without control characters"
    );
}

#[test]
fn oidc_urls_must_be_https_except_on_loopback() {
    for issuer in [
        "http://127.0.0.1:8080",
        "http://localhost:8080/realms/dev",
        "http://[::1]:9000",
        "https://login.hospital.example",
        "https://10.0.0.7:8443/oidc",
    ] {
        let loaded = load_from_str("", file(), oidc_env(&[("VIGIL_OIDC_ISSUER", issuer)]));
        assert!(loaded.is_ok(), "{issuer}: {:?}", loaded.err());
    }
    for issuer in [
        "http://login.hospital.example",
        "http://10.0.0.7:8080",
        "ftp://login.hospital.example",
        "https://",
        "https://login.hospital.example/?tenant=1",
        "https://login.hospital.example/#x",
        "https://user@login.hospital.example",
        "https://login.hospital.example:0",
        "https://login.hospital.example:99999",
        "https://bad_host!.example",
        "https://[::1",
        "login.hospital.example",
    ] {
        let err = load_from_str("", file(), oidc_env(&[("VIGIL_OIDC_ISSUER", issuer)]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("`oidc.issuer`") && err.contains("expected an https:// URL"),
            "{issuer}: {err}"
        );
    }
    // The hub's own callback is always HTTPS.
    let err = load_from_str(
        "",
        file(),
        oidc_env(&[(
            "VIGIL_OIDC_REDIRECT_URI",
            "http://localhost:8443/api/v1/oidc/callback",
        )]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("`oidc.redirect_uri`"), "{err}");
}

#[test]
fn a_configured_issuer_needs_a_client() {
    for (missing, key) in [
        ("VIGIL_OIDC_CLIENT_ID", "`oidc.client_id`"),
        ("VIGIL_OIDC_CLIENT_SECRET", "`oidc.client_secret`"),
        ("VIGIL_OIDC_REDIRECT_URI", "`oidc.redirect_uri`"),
    ] {
        let err = load_from_str("", file(), oidc_env(&[(missing, "\"\"")]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(key), "{missing}: {err}");
    }
    let err = load_from_str(
        "",
        file(),
        oidc_env(&[("VIGIL_OIDC_USERNAME_CLAIM", "upn")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.ends_with("expected one of: preferred_username, email, sub"),
        "{err}"
    );
    let err = load_from_str(
        "",
        file(),
        oidc_env(&[("VIGIL_OIDC_USERNAME_DOMAIN", "@hospital.example")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("`oidc.username_domain`"), "{err}");
}
