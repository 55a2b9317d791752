#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use vigil_model::IdError;
use vigil_model::id::IdKind;

use super::*;
use crate::rules::CidrError;

/// A valid rule of `event` with `extra` keys.
fn rule(event: &str, extra: &str) -> String {
    format!(
        "[[rule]]\nid = \"r\"\ndescription = \"A rule\"\nseverity = \"high\"\nevent = \"{event}\"\n\
         {extra}\n"
    )
}

fn problems(text: &str) -> Vec<Problem> {
    match RuleSet::parse(text) {
        Err(RulesError::Invalid { problems, .. }) => problems,
        other => panic!("expected problems, got {other:?}"),
    }
}

/// The one problem of `text`.
fn problem(text: &str) -> Problem {
    let mut problems = problems(text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problems.remove(0)
}

fn kind(text: &str) -> ProblemKind {
    problem(text).kind
}

fn at(line: u32, column: u32) -> Option<Position> {
    Some(Position { line, column })
}

#[test]
fn a_complete_rule_parses_with_every_key() {
    let rules = RuleSet::parse(&rule(
        "stored",
        r#"
        technique = "T0836"
        enabled = false
        devices = ["pump-1", "pump-2"]
        device_classes = ["infusion_pump"]
        quantity = "infusion_rate"
        above = 500
        below = 0.5
        unit = "mL/h"
        duplicates = false
        count = 3
        within_seconds = 600
        per = "device"
        "#,
    ))
    .unwrap();
    let rule = rules.get("r").unwrap();
    assert_eq!(rule.description(), "A rule");
    assert_eq!(rule.severity(), Severity::High);
    assert_eq!(rule.technique(), Some("T0836"));
    assert!(!rule.enabled());
    assert_eq!(rule.event(), EventKind::Stored);
    assert_eq!(
        rule.threshold(),
        Some(Threshold {
            count: 3,
            within_seconds: 600,
            per: Per::Device
        })
    );
    assert_eq!(rule.line(), 1);
    assert_eq!(rule.matcher.devices.len(), 2);
    assert_eq!(rule.matcher.classes, [DeviceClass::InfusionPump]);
    assert_eq!(rule.matcher.duplicates, Some(false));
}

#[test]
fn connection_and_refusal_keys_parse() {
    let connected = RuleSet::parse(&rule(
        "connected",
        "took_over = true\naddresses = [\"10.0.0.0/8\", \"fd00::/8\"]\nnot_addresses = [\"10.20.0.0/16\"]\ncount = 2\nwithin_seconds = 60\nper = \"address\"",
    ))
    .unwrap();
    let matcher = &connected.rules()[0].matcher;
    assert_eq!(matcher.took_over, Some(true));
    assert_eq!(matcher.addresses.len(), 2);
    assert_eq!(matcher.not_addresses.len(), 1);
    let refused = RuleSet::parse(&rule(
        "refused",
        "refusals = [\"bad_certificate\", \"revoked_certificate\"]",
    ))
    .unwrap();
    assert_eq!(
        refused.rules()[0].matcher.refusals,
        [Refusal::BadCertificate, Refusal::RevokedCertificate]
    );
    assert!(RuleSet::parse(&rule("flooding", "devices = [\"m-1\"]")).is_ok());
}

#[test]
fn an_empty_file_is_no_rules_and_enabled_is_the_default() {
    assert!(RuleSet::parse("").unwrap().is_empty());
    assert!(RuleSet::parse("# nothing yet\n").unwrap().is_empty());
    assert!(RuleSet::parse(&rule("stored", "")).unwrap().rules()[0].enabled());
}

#[test]
fn a_quantity_by_name_mdc_reference_id_or_code() {
    for quantity in [
        "\"infusion_rate\"",
        "\"MDC_FLOW_FLUID_PUMP\"",
        "157784", // 2 × 65536 + 26712
        "0x26858",
    ] {
        let rules = RuleSet::parse(&rule("stored", &format!("quantity = {quantity}"))).unwrap();
        assert_eq!(
            rules.rules()[0].matcher.value.unwrap().quantity,
            Quantity::InfusionRate,
            "{quantity}"
        );
    }
}

#[test]
fn limits_are_converted_to_the_canonical_unit() {
    let value = |extra: &str| {
        RuleSet::parse(&rule("stored", extra)).unwrap().rules()[0]
            .matcher
            .value
            .unwrap()
    };
    // 10 mL/min is 600 mL/h, the canonical unit of a pump's rate.
    let pump = value("quantity = \"infusion_rate\"\nabove = 10\nunit = \"mL/min\"");
    assert_eq!(pump.above, Some(600.0));
    assert_eq!(pump.below, None);
    // 3.9 mmol/L of glucose is 70.26 mg/dL (× 18.0156).
    let glucose = value("quantity = \"glucose_capillary\"\nbelow = 3.9\nunit = \"mmol/L\"");
    assert!((glucose.below.unwrap() - 70.260_84).abs() < 1e-9);
    // 104 °F is 40 °C: an offset, not only a scale.
    let fever = value("quantity = \"body_temperature\"\nabove = 104\nunit = \"[degF]\"");
    assert!((fever.above.unwrap() - 40.0).abs() < 1e-9);
    // Underscores and exponents are TOML numbers like any other.
    let big = value("quantity = \"infusion_rate\"\nabove = 1_2e2\nunit = \"mL/h\"");
    assert_eq!(big.above, Some(1200.0));
}

// One test per refusal.

#[test]
fn too_large() {
    let text = "#".repeat(MAX_FILE_BYTES + 1);
    assert_eq!(
        RuleSet::parse(&text).unwrap_err(),
        RulesError::TooLarge {
            bytes: MAX_FILE_BYTES + 1
        }
    );
    assert!(matches!(
        RuleSet::parse_bytes(text.as_bytes()),
        Err(RulesError::TooLarge { .. })
    ));
}

#[test]
fn not_utf8() {
    let mut bytes = b"[[rule]]\nid = \"ab".to_vec();
    bytes.push(0xFF);
    assert_eq!(
        RuleSet::parse_bytes(&bytes).unwrap_err(),
        RulesError::NotUtf8 {
            position: Position { line: 2, column: 9 }
        }
    );
    assert!(RuleSet::parse_bytes(rule("stored", "").as_bytes()).is_ok());
}

#[test]
fn syntax_errors_give_line_and_column_and_quote_nothing() {
    let error = RuleSet::parse(&rule("stored", "above = = \"MRN-0012345\"")).unwrap_err();
    let RulesError::Syntax { position, message } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*position, at(6, 9));
    let shown = error.to_string();
    assert!(
        shown.starts_with("line 6, column 9: not valid TOML: "),
        "{shown}"
    );
    assert!(!shown.contains("MRN"), "{shown}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn duplicate_keys_are_a_syntax_error() {
    let error = RuleSet::parse(&rule("stored", "severity = \"low\"")).unwrap_err();
    assert!(
        matches!(error, RulesError::Syntax { position, .. } if position == at(6, 1)),
        "{error:?}"
    );
}

#[test]
fn unknown_top_level_key() {
    let p = problem("[[rules]]\nid = \"x\"\n");
    assert_eq!(p.position, at(1, 3));
    assert_eq!(p.key.as_deref(), Some("rules"));
    assert_eq!(p.rule, None);
    assert_eq!(
        p.kind,
        ProblemKind::UnknownKey {
            suggestion: Some("rule")
        }
    );
    assert_eq!(
        p.to_string(),
        "line 1, column 3: unknown key `rules`; did you mean `rule`?"
    );
}

#[test]
fn rule_not_written_as_tables() {
    for text in ["[rule]\nid = \"x\"\n", "rule = 3\n", "rule = [\"x\"]\n"] {
        assert_eq!(kind(text), ProblemKind::NotRuleTables, "{text}");
    }
    // An inline list of tables is tables too.
    assert!(RuleSet::parse("rule = []\n").unwrap().is_empty());
}

#[test]
fn unknown_key_in_a_rule() {
    let p = problem(&rule("stored", "severty = \"low\""));
    assert_eq!(p.position, at(6, 1));
    assert_eq!(p.rule, Some(RuleRef::Id("r".into())));
    assert_eq!(
        p.to_string(),
        "line 6, column 1: rule `r`: unknown key `severty`; did you mean `severity`?"
    );
    assert_eq!(
        kind(&rule("stored", "colour = \"red\"")),
        ProblemKind::UnknownKey { suggestion: None }
    );
    // A key's name is all of the file an error shows, and even that is cut and escaped.
    let long = format!("\"{}\\n\" = 1", "k".repeat(100));
    let p = problem(&rule("stored", &long));
    let key = p.key.unwrap();
    assert!(
        key.starts_with(&"k".repeat(64)) && key.ends_with('…'),
        "{key}"
    );
    assert!(!key.contains('\n'));
}

#[test]
fn missing_keys() {
    let p = problems("[[rule]]\ntechnique = \"T0836\"\n");
    assert_eq!(
        p.iter()
            .map(|p| p.key.as_deref().unwrap())
            .collect::<Vec<_>>(),
        ["id", "description", "severity", "event"]
    );
    for p in &p {
        assert_eq!(p.kind, ProblemKind::Missing { with: None });
        assert_eq!(p.position, at(1, 1), "at the rule's header");
        assert_eq!(p.rule, Some(RuleRef::Number(1)), "no id: by number");
    }
    assert_eq!(
        p[0].to_string(),
        "line 1, column 1: rule #1: `id` is required"
    );
}

#[test]
fn wrong_types() {
    for (extra, key, expected) in [
        ("technique = 836", "technique", "a string"),
        ("enabled = \"yes\"", "enabled", "true or false"),
        ("devices = \"pump-1\"", "devices", "a list of strings"),
        ("devices = [1]", "devices", "a list of strings"),
        (
            "quantity = true",
            "quantity",
            "a quantity's name or MDC code",
        ),
        (
            "quantity = \"spo2\"\nabove = \"90\"\nunit = \"%\"",
            "above",
            "a number",
        ),
        ("duplicates = 1", "duplicates", "true or false"),
        (
            "count = \"5\"\nwithin_seconds = 60\nper = \"all\"",
            "count",
            "a whole number",
        ),
        (
            "count = 5.0\nwithin_seconds = 60\nper = \"all\"",
            "count",
            "a whole number",
        ),
    ] {
        let p = problem(&rule("stored", extra));
        assert_eq!(p.key.as_deref(), Some(key), "{extra}");
        assert_eq!(p.kind, ProblemKind::WrongType { expected }, "{extra}");
    }
    let p =
        problem("[[rule]]\nid = 7\ndescription = \"d\"\nseverity = \"low\"\nevent = \"stored\"\n");
    assert_eq!(
        p.kind,
        ProblemKind::WrongType {
            expected: "a string"
        }
    );
    assert_eq!(p.rule, Some(RuleRef::Number(1)));
}

#[test]
fn unknown_names_are_refused_with_the_allowed_ones_and_the_closest() {
    let p = problem(&rule("stored", "").replace("\"high\"", "\"hgih\""));
    assert_eq!(p.position, at(4, 12));
    assert_eq!(
        p.to_string(),
        "line 4, column 12: rule `r`: `severity` is not one of: info, low, medium, high, \
         critical; did you mean `high`?"
    );
    assert!(matches!(
        kind(&rule("stored", "").replace("\"high\"", "\"High\"")),
        ProblemKind::UnknownName { suggestion: Some(s), .. } if s == "high"
    ));
    assert!(matches!(
        kind(&rule("conected", "")),
        ProblemKind::UnknownName { suggestion: Some(s), .. } if s == "connected"
    ));
    for (event, extra, key, suggestion) in [
        (
            "stored",
            "device_classes = [\"infusion_pump\", \"infusion_pmup\"]",
            "device_classes",
            Some("infusion_pump"),
        ),
        (
            "refused",
            "refusals = [\"bad_certficate\"]",
            "refusals",
            Some("bad_certificate"),
        ),
        (
            "stored",
            "quantity = \"infusion_rte\"",
            "quantity",
            Some("infusion_rate"),
        ),
        ("stored", "quantity = \"MDC_NOT_A_TERM\"", "quantity", None),
        ("stored", "quantity = 12345", "quantity", None),
        (
            "refused",
            "count = 2\nwithin_seconds = 9\nper = \"adress\"",
            "per",
            Some("address"),
        ),
    ] {
        let p = problem(&rule(event, extra));
        assert_eq!(p.key.as_deref(), Some(key), "{extra}");
        let ProblemKind::UnknownName {
            suggestion: found, ..
        } = &p.kind
        else {
            panic!("{p:?}");
        };
        assert_eq!(found.as_deref(), suggestion, "{extra}");
    }
    let p = problem(&rule(
        "stored",
        "device_classes = [\"infusion_pump\", \"toaster\"]",
    ));
    assert_eq!(p.position, at(6, 36), "at the item");
    assert!(
        p.to_string()
            .contains("bedside_monitor, pulse_oximeter, cgm"),
        "{p}"
    );
}

#[test]
fn bad_ids() {
    for id in [
        "Pump-Rate",
        "-x",
        "",
        "a b",
        "é",
        &"a".repeat(MAX_ID_LEN + 1),
    ] {
        let p = problem(&rule("stored", "").replace("id = \"r\"", &format!("id = \"{id}\"")));
        assert_eq!(p.kind, ProblemKind::BadId, "{id:?}");
        assert_eq!(p.rule, Some(RuleRef::Number(1)));
    }
    assert!(
        RuleSet::parse(
            &rule("stored", "").replace("id = \"r\"", &format!("id = \"{}\"", "a".repeat(64)))
        )
        .is_ok()
    );
    assert!(RuleSet::parse(&rule("stored", "").replace("id = \"r\"", "id = \"0-a_b\"")).is_ok());
}

#[test]
fn duplicate_ids() {
    let text = [rule("stored", ""), rule("flooding", "")].concat();
    let p = problem(&text);
    assert_eq!(
        p.kind,
        ProblemKind::DuplicateId {
            first: at(2, 6).unwrap()
        }
    );
    assert_eq!(p.position, at(8, 6));
    assert_eq!(
        p.rule,
        Some(RuleRef::Number(2)),
        "the second is named by number"
    );
}

#[test]
fn bad_descriptions() {
    for description in [
        "\"\"",
        "\"   \"",
        "\"\"\"two\nlines\"\"\"",
        "\"tab\\there\"",
        &format!("\"{}\"", "d".repeat(MAX_DESCRIPTION_CHARS + 1)),
    ] {
        let text = rule("stored", "").replace("\"A rule\"", description);
        assert_eq!(kind(&text), ProblemKind::BadDescription, "{description}");
    }
    let longest = format!("\"{}\"", "é".repeat(MAX_DESCRIPTION_CHARS));
    assert!(RuleSet::parse(&rule("stored", "").replace("\"A rule\"", &longest)).is_ok());
}

#[test]
fn bad_techniques() {
    for technique in ["T836", "t0836", "T08361", "T1059", "T0x36", "T08 6"] {
        assert_eq!(
            kind(&rule("stored", &format!("technique = \"{technique}\""))),
            ProblemKind::BadTechnique,
            "{technique}"
        );
    }
}

#[test]
fn bad_device_ids() {
    let p = problem(&rule("stored", "devices = [\"pump-1\", \"pump/2\"]"));
    assert_eq!(p.position, at(6, 22));
    assert_eq!(
        p.kind,
        ProblemKind::BadDeviceId {
            item: 2,
            error: IdError::InvalidCharacter {
                kind: IdKind::Device,
                position: 4
            }
        }
    );
}

#[test]
fn bad_addresses() {
    let p = problem(&rule(
        "connected",
        "addresses = [\"10.0.0.0/8\", \"10.1.2.3/8\", \"fd00::/8\"]",
    ));
    assert_eq!(
        p.kind,
        ProblemKind::BadAddress {
            item: 2,
            error: CidrError::HostBitsSet
        }
    );
    assert_eq!(
        p.to_string(),
        "line 6, column 28: rule `r`: `addresses` item 2 has bits set after its prefix length; \
         write the first address of the network"
    );
    assert!(matches!(
        kind(&rule("refused", "not_addresses = [\"guest-wifi\"]")),
        ProblemKind::BadAddress {
            item: 1,
            error: CidrError::BadAddress
        }
    ));
}

#[test]
fn empty_lists() {
    for (event, extra) in [
        ("stored", "devices = []"),
        ("stored", "device_classes = []"),
        ("refused", "refusals = []"),
        ("connected", "addresses = []"),
        ("connected", "not_addresses = []"),
    ] {
        assert_eq!(kind(&rule(event, extra)), ProblemKind::EmptyList, "{extra}");
    }
}

#[test]
fn too_many_items() {
    let devices: Vec<String> = (0..=MAX_LIST_ITEMS).map(|i| format!("\"d{i}\"")).collect();
    let text = rule("stored", &format!("devices = [{}]", devices.join(",")));
    assert_eq!(
        kind(&text),
        ProblemKind::TooManyItems {
            max: MAX_LIST_ITEMS
        }
    );
}

#[test]
fn conditions_the_event_does_not_carry() {
    for (event, extra, key) in [
        ("connected", "quantity = \"spo2\"", "quantity"),
        ("refused", "device_classes = [\"cgm\"]", "device_classes"),
        ("flooding", "duplicates = true", "duplicates"),
        ("stored", "refusals = [\"bad_certificate\"]", "refusals"),
        ("refused", "took_over = true", "took_over"),
        ("stored", "addresses = [\"10.0.0.0/8\"]", "addresses"),
        (
            "flooding",
            "not_addresses = [\"10.0.0.0/8\"]",
            "not_addresses",
        ),
    ] {
        let p = problem(&rule(event, extra));
        assert_eq!(p.key.as_deref(), Some(key));
        assert!(
            matches!(p.kind, ProblemKind::NotForEvent { .. }),
            "{extra}: {p:?}"
        );
    }
    let p = problem(&rule("flooding", "addresses = [\"10.0.0.0/8\"]"));
    assert_eq!(
        p.to_string(),
        "line 6, column 1: rule `r`: `addresses` applies only to event = \"connected\" or \
         \"refused\", not to event = \"flooding\""
    );
}

#[test]
fn groupings_the_event_does_not_carry() {
    for (event, per) in [
        ("refused", "patient"),
        ("connected", "patient"),
        ("stored", "address"),
        ("flooding", "address"),
    ] {
        let p = problem(&rule(
            event,
            &format!("count = 2\nwithin_seconds = 60\nper = \"{per}\""),
        ));
        assert_eq!(p.key.as_deref(), Some("per"));
        assert!(
            matches!(p.kind, ProblemKind::PerNotForEvent { .. }),
            "{event} {per}"
        );
    }
}

#[test]
fn a_grouping_the_event_does_not_carry_names_the_grouping() {
    let p = problem(&rule(
        "refused",
        "count = 5\nwithin_seconds = 300\nper = \"patient\"",
    ));
    assert_eq!(
        p.to_string(),
        "line 8, column 7: rule `r`: `per = \"patient\"` applies only to event = \"stored\", \
         not to event = \"refused\""
    );
}

#[test]
fn a_unit_needs_a_limit() {
    let p = problem(&rule("stored", "quantity = \"spo2\"\nunit = \"%\""));
    assert_eq!(p.key.as_deref(), Some("unit"));
    assert!(matches!(p.kind, ProblemKind::Requires { .. }));
    assert_eq!(
        p.to_string(),
        "line 7, column 1: rule `r`: `unit` needs `above` or `below` (the unit they are \
         written in)"
    );
}

#[test]
fn a_limit_needs_a_quantity_and_a_unit() {
    let p = problems(&rule("stored", "below = 90"));
    assert_eq!(
        p.iter()
            .map(|p| (p.key.as_deref().unwrap(), &p.kind))
            .collect::<Vec<_>>(),
        [
            (
                "quantity",
                &ProblemKind::Missing {
                    with: Some("below")
                }
            ),
            (
                "unit",
                &ProblemKind::Missing {
                    with: Some("below")
                }
            ),
        ]
    );
    assert_eq!(
        problem(&rule("stored", "quantity = \"spo2\"\nbelow = 90")).to_string(),
        "line 1, column 1: rule `r`: `unit` is required with `below`"
    );
}

#[test]
fn a_threshold_needs_all_three_keys() {
    let p = problems(&rule("refused", "within_seconds = 60"));
    assert_eq!(
        p.iter()
            .map(|p| (p.key.as_deref().unwrap(), &p.kind))
            .collect::<Vec<_>>(),
        [
            (
                "count",
                &ProblemKind::Missing {
                    with: Some("within_seconds")
                }
            ),
            (
                "per",
                &ProblemKind::Missing {
                    with: Some("within_seconds")
                }
            ),
        ]
    );
}

#[test]
fn a_unit_not_accepted_for_the_quantity() {
    let p = problem(&rule(
        "stored",
        "quantity = \"infusion_rate\"\nabove = 500\nunit = \"mg/dL\"",
    ));
    assert_eq!(
        p.kind,
        ProblemKind::UnitNotAccepted {
            quantity: Quantity::InfusionRate,
            accepted: "mL/h, mL/min".into()
        }
    );
    assert_eq!(p.position, at(8, 8));
    // UCUM is case-sensitive: "ml/h" is not "mL/h".
    assert!(matches!(
        kind(&rule(
            "stored",
            "quantity = \"infusion_rate\"\nabove = 500\nunit = \"ml/h\""
        )),
        ProblemKind::UnitNotAccepted { .. }
    ));
}

#[test]
fn limits_that_are_not_finite() {
    for value in ["nan", "inf", "-inf", "+nan"] {
        let p = problem(&rule(
            "stored",
            &format!("quantity = \"spo2\"\nbelow = {value}\nunit = \"%\""),
        ));
        assert_eq!(p.kind, ProblemKind::NotFinite, "{value}");
    }
    let p = problem(&rule(
        "stored",
        "quantity = \"infusion_rate\"\nabove = 1e308\nunit = \"mL/min\"",
    ));
    assert_eq!(p.kind, ProblemKind::NotFinite, "overflows once converted");
}

#[test]
fn above_must_be_over_below() {
    for (above, below) in [("40", "180"), ("90", "90")] {
        let p = problem(&rule(
            "stored",
            &format!(
                "quantity = \"heart_rate\"\nabove = {above}\nbelow = {below}\nunit = \"/min\""
            ),
        ));
        assert_eq!(p.kind, ProblemKind::AboveNotOverBelow);
        assert_eq!(p.key.as_deref(), Some("above"));
    }
    // Compared once converted: 0.95 (a fraction) is 95 %.
    assert_eq!(
        kind(&rule(
            "stored",
            "quantity = \"spo2\"\nabove = 0.95\nbelow = 0.96\nunit = \"1\""
        )),
        ProblemKind::AboveNotOverBelow
    );
}

#[test]
fn numbers_out_of_range() {
    for (count, within, key, min, max) in [
        ("1", "60", "count", 2, MAX_COUNT),
        ("0", "60", "count", 2, MAX_COUNT),
        ("-3", "60", "count", 2, MAX_COUNT),
        ("1001", "60", "count", 2, MAX_COUNT),
        ("99999999999999999999", "60", "count", 2, MAX_COUNT),
        ("5", "0", "within_seconds", 1, MAX_WITHIN_SECONDS),
        ("5", "604801", "within_seconds", 1, MAX_WITHIN_SECONDS),
    ] {
        let p = problem(&rule(
            "refused",
            &format!("count = {count}\nwithin_seconds = {within}\nper = \"all\""),
        ));
        assert_eq!(p.key.as_deref(), Some(key), "{count} {within}");
        assert_eq!(
            p.kind,
            ProblemKind::OutOfRange { min, max },
            "{count} {within}"
        );
    }
    assert!(
        RuleSet::parse(&rule(
            "refused",
            "count = 1000\nwithin_seconds = 604800\nper = \"all\""
        ))
        .is_ok()
    );
}

#[test]
fn too_many_rules() {
    let text: String = (0..=MAX_RULES)
        .map(|i| {
            format!(
                "[[rule]]\nid = \"r{i}\"\ndescription = \"d\"\nseverity = \"low\"\nevent = \"stored\"\n"
            )
        })
        .collect();
    let p = problem(&text);
    assert_eq!(p.kind, ProblemKind::TooManyRules { max: MAX_RULES });
    assert_eq!(p.position, at(5 * MAX_RULES as u32 + 1, 1));
}

#[test]
fn thresholds_that_could_keep_too_much() {
    // Each: 1024 groups × (128 + 8 × 1000) bytes ≈ 7.9 MiB; nine of them pass 64 MiB.
    let heavy = |i: usize| {
        rule(
            "refused",
            "count = 1000\nwithin_seconds = 60\nper = \"address\"",
        )
        .replace("id = \"r\"", &format!("id = \"r{i}\""))
    };
    let eight: String = (0..8).map(heavy).collect();
    assert!(RuleSet::parse(&eight).is_ok());
    let nine: String = (0..9).map(heavy).collect();
    let p = problem(&nine);
    assert!(
        matches!(p.kind, ProblemKind::StateTooLarge { bytes, max: MAX_STATE_BYTES } if bytes > MAX_STATE_BYTES)
    );
    assert_eq!((p.position, p.rule, p.key), (None, None, None));
    // A disabled rule keeps nothing.
    let disabled = nine.replacen("event =", "enabled = false\nevent =", 1);
    assert!(RuleSet::parse(&disabled).is_ok());
}

#[test]
fn every_problem_of_every_rule_is_reported_in_file_order() {
    let text = [
        rule("stored", "colour = 1"),
        "[[rule]]\nid = \"Bad\"\n".to_owned(),
        rule("refused", "took_over = true").replace("id = \"r\"", "id = \"third\""),
    ]
    .concat();
    let p = problems(&text);
    let summary: Vec<(u32, Option<&RuleRef>)> = p
        .iter()
        .map(|p| (p.position.unwrap().line, p.rule.as_ref()))
        .collect();
    assert_eq!(
        summary,
        [
            (6, Some(&RuleRef::Id("r".into()))),
            (7, Some(&RuleRef::Number(2))), // description, at the header
            (7, Some(&RuleRef::Number(2))), // severity
            (7, Some(&RuleRef::Number(2))), // event
            (8, Some(&RuleRef::Number(2))), // the id
            (14, Some(&RuleRef::Id("third".into()))),
        ]
    );
}

#[test]
fn problems_beyond_the_most_reported_are_counted() {
    let text: String = (0..150)
        .map(|i| format!("[[rule]]\nid = \"r{i}\"\n"))
        .collect();
    let RulesError::Invalid { problems, omitted } = RuleSet::parse(&text).unwrap_err() else {
        panic!();
    };
    assert_eq!(problems.len(), MAX_PROBLEMS);
    assert_eq!(omitted, 150 * 3 - MAX_PROBLEMS);
}

#[test]
fn errors_show_no_value_from_the_file() {
    // Every value below is refused; none may appear in the errors.
    let text = r#"
        [[rule]]
        id = "MRN0012345"
        description = "SECRETDESC-PATIENT-JANE-DOE-0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
        severity = "SECRETSEV"
        technique = "SECRETTECH"
        event = "stored"
        devices = ["SECRET/DEV"]
        device_classes = ["SECRETCLASS"]
        quantity = "SECRETQTY"

        [[rule]]
        id = "second"
        description = "d"
        severity = "low"
        event = "SECRETEVENT"
        addresses = ["SECRETADDR"]

        [[rule]]
        id = "third"
        description = "d"
        severity = "low"
        event = "stored"
        quantity = "spo2"
        below = 90
        unit = "SECRETUNIT"
        count = 2
        within_seconds = 60
        per = "SECRETPER"
    "#;
    let shown = RuleSet::parse(text).unwrap_err().to_string();
    assert!(shown.lines().count() > 8, "{shown}");
    for secret in ["MRN", "SECRET", "JANE"] {
        assert!(!shown.contains(secret), "{secret} in:\n{shown}");
    }
}

#[test]
fn every_refusal_is_named() {
    // Fails to compile when the events gain a refusal, so that the list above gains it too.
    fn listed(refusal: Refusal) -> bool {
        match refusal {
            Refusal::ForeignTopic
            | Refusal::MalformedPacket
            | Refusal::ClientIdMismatch
            | Refusal::EnrolmentToken
            | Refusal::BadCertificate
            | Refusal::RevokedCertificate
            | Refusal::InvalidPayload => REFUSALS.contains(&refusal),
        }
    }
    for refusal in REFUSALS {
        assert!(listed(*refusal));
    }
    assert_eq!(REFUSALS.len(), 7);
}

#[test]
fn the_documented_examples_parse() {
    let text = include_str!("../../../../../docs/examples/rules.toml");
    let rules = RuleSet::parse(text).unwrap_or_else(|e| panic!("{e}"));
    assert!(rules.len() >= 3);
    assert!(rules.rules().iter().all(Rule::enabled));
}

/// Text that looks like a rules file: known keys and values in any arrangement.
fn rules_like() -> impl Strategy<Value = String> {
    let key = prop::sample::select(
        KEYS.iter()
            .copied()
            .chain(["rule", "[[rule]]", "[rule]", "x"])
            .collect::<Vec<_>>(),
    );
    let value = prop::sample::select(vec![
        "\"stored\"",
        "\"refused\"",
        "\"infusion_rate\"",
        "\"mL/min\"",
        "\"10.0.0.0/8\"",
        "[\"fd00::/8\", \"10.1.2.3/8\"]",
        "[\"pump-1\"]",
        "[]",
        "1",
        "-1",
        "1e308",
        "nan",
        "true",
        "\"address\"",
        "\"T0836\"",
        "{ a = 1 }",
        "\"\"",
    ]);
    prop::collection::vec((key, value, any::<bool>()), 0..40).prop_map(|lines| {
        lines
            .into_iter()
            .map(|(key, value, header)| {
                if header || key.starts_with('[') {
                    "[[rule]]\n".to_owned()
                } else {
                    format!("{key} = {value}\n")
                }
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
        let _ = RuleSet::parse(&text);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = RuleSet::parse_bytes(&bytes);
    }

    #[test]
    fn parse_never_panics_on_near_rules_files(text in rules_like()) {
        if let Err(error) = RuleSet::parse(&text) {
            // And every error prints.
            prop_assert!(!error.to_string().is_empty());
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for text in [
        format!("rule = {}", "[".repeat(100_000)),
        format!("rule = {}", "{ a = ".repeat(100_000)),
        format!(
            "[[rule]]\nid = \"r\"\ndevices = {}1{}",
            "[".repeat(50_000),
            "]".repeat(50_000)
        ),
    ] {
        assert!(RuleSet::parse(&text).is_err());
    }
}

#[test]
fn the_errors_shown_in_the_documentation_are_the_errors_vigil_gives() {
    let text = r#"[[rule]]
id = "picu-pump-rate-above-limit"
description = "PICU infusion pump reports a rate above the ward's limit"
severity = "critcal"
event = "stored"
quantity = "infusion_rate"
above = 250
unit = "ml/h"

[[rule]]
id = "Cert-Burst"
description = "Refused certificates outside the clinical VLAN"
severity = "high"
event = "refused"
not_adresses = ["10.20.0.0/16"]
count = 5
within_seconds = 300
per = "patient"

[[rule]]
id = "guest-network"
description = "A device connected from the guest Wi-Fi"
severity = "high"
technique = "T859"
event = "connected"
addresses = ["172.16.0.0/12", "fd00:99::1/32"]
"#;
    let docs = include_str!("../../../../../docs/rules.md");
    let shown = RuleSet::parse(text).unwrap_err().to_string();
    assert_eq!(shown.lines().count(), 8);
    for line in shown.lines() {
        assert!(docs.contains(line.trim()), "docs/rules.md lacks: {line}");
    }
    let syntax = RuleSet::parse("[[rule]\nid = 1").unwrap_err().to_string();
    assert!(docs.contains(&syntax), "docs/rules.md lacks: {syntax}");
}
