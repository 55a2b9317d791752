#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use proptest::prelude::*;

fn observations(query: &str) -> Result<Search, SearchError> {
    parse(ResourceType::Observation, query, false)
}

fn problem(query: &str) -> (String, Problem) {
    let e = observations(query).unwrap_err();
    (e.parameter, e.problem)
}

fn ms(rfc3339: &str) -> i64 {
    Timestamp::parse_rfc3339(rfc3339).unwrap().unix_millis()
}

#[test]
fn a_typical_observation_search() {
    let s = observations(
        "patient=Patient/p-17&code=http://loinc.org|8867-4,urn:iso:std:iso:11073:10101|150456\
         &date=ge2026-11-29&date=lt2026-11-30&_count=500",
    )
    .unwrap();
    assert_eq!(s.patient.unwrap().as_str(), "p-17");
    assert_eq!(
        s.codes,
        CodeFilter::Only(vec![
            Quantity::HeartRate,
            Quantity::PulseRate,
            Quantity::Spo2
        ])
    );
    assert_eq!(
        s.range,
        TimeRange {
            start: ms("2026-11-29T00:00:00Z"),
            end: ms("2026-11-30T00:00:00Z")
        }
    );
    assert_eq!(s.count, 500);
    assert!(s.cursor.is_none() && s.ignored.is_empty());
}

#[test]
fn defaults_and_bare_ids() {
    let s = observations("subject:Patient=p-1").unwrap();
    assert_eq!(s.patient.unwrap().as_str(), "p-1");
    assert_eq!(s.count, DEFAULT_COUNT);
    assert_eq!(s.codes, CodeFilter::Any);
    assert_eq!(s.range, TimeRange::ALL);
    assert!(observations("").unwrap().patient.is_none());
}

#[test]
fn codes_by_system_alias_or_none() {
    let only = |q: &str| observations(q).unwrap().codes;
    assert_eq!(only("code=8867-4"), only("code=http://loinc.org|8867-4"));
    assert_eq!(
        only("code=151578"),
        CodeFilter::Only(vec![Quantity::RespirationRate])
    );
    assert_eq!(
        only("code=http://loinc.org|150456"),
        CodeFilter::Only(vec![])
    );
    assert_eq!(only("code=|8867-4"), CodeFilter::Only(vec![]));
    assert_eq!(
        only("code=http://snomed.info/sct|1234"),
        CodeFilter::Only(vec![])
    );
    // The trap of docs/vocabulary.md: 150324 is arterial saturation, not SpO2.
    assert_eq!(only("code=150324"), CodeFilter::Only(vec![]));
    let loinc = only("code=http://loinc.org|");
    assert!(loinc.matches(Quantity::Spo2) && !loinc.matches(Quantity::InfusionRate));
    let mdc = only("code=urn:iso:std:iso:11073:10101|");
    assert!(mdc.matches(Quantity::InfusionRate));
    // Repeats are AND.
    assert_eq!(
        only("code=8867-4,150456&code=150456"),
        CodeFilter::Only(vec![Quantity::Spo2])
    );
    // Percent-encoded `|` and `:`.
    assert_eq!(
        only("code=http%3A%2F%2Floinc.org%7C2708-6"),
        CodeFilter::Only(vec![Quantity::Spo2])
    );
}

#[test]
fn ne_dates_exclude_and_ranges_intersect() {
    let s = observations("date=2026-11-29&date=ne2026-11-29T08:00Z").unwrap();
    assert!(s.time_matches(Timestamp::parse_rfc3339("2026-11-29T07:59:59Z").unwrap()));
    assert!(!s.time_matches(Timestamp::parse_rfc3339("2026-11-29T08:00:30Z").unwrap()));
    assert!(!s.time_matches(Timestamp::parse_rfc3339("2026-11-30T00:00:00Z").unwrap()));
    let empty = observations("date=lt2026&date=gt2026").unwrap();
    assert!(empty.range.is_empty());
}

#[test]
fn unknown_parameters_are_listed_or_refused() {
    let s =
        observations("patient=p-1&_sort=-date&_summary=true&_sort=date&_format=json&_pretty=true")
            .unwrap();
    assert_eq!(s.ignored, ["_sort", "_summary"]);
    assert_eq!(s.link_query(None), "patient=p-1&_count=100");
    let e = parse(ResourceType::Observation, "patient=p-1&_sort=-date", true).unwrap_err();
    assert_eq!(e.parameter, "_sort");
    assert_eq!(e.problem, Problem::Unknown);
    assert_eq!(e.issue_type(), IssueType::NotSupported);
    // A parameter of another resource is unknown here.
    assert_eq!(
        parse(ResourceType::Device, "code=8867-4", true)
            .unwrap_err()
            .problem,
        Problem::Unknown
    );
    assert_eq!(
        parse(ResourceType::Patient, "_id=p-1", true)
            .unwrap()
            .id
            .as_deref(),
        Some("p-1")
    );
}

#[test]
fn empty_values_are_ignored() {
    let s = observations("patient=&code=&date=").unwrap();
    assert!(s.patient.is_none() && s.codes == CodeFilter::Any);
    assert_eq!(s.link_query(None), "_count=100");
}

#[test]
fn links_carry_the_applied_parameters_and_the_cursor() {
    let s = observations("patient=p-1&date=ge2026-11-29T08:00%2B01:00&_cursor=1764403200000-42")
        .unwrap();
    let cursor = s.cursor.unwrap();
    assert_eq!(cursor.row, 42);
    let next = Cursor {
        time: cursor.time,
        row: 99,
    };
    let link = s.link_query(Some(&next));
    assert_eq!(
        link,
        "patient=p-1&date=ge2026-11-29T08%3A00%2B01%3A00&_count=100&_cursor=1764403200000-99"
    );
    // The link parses back to the same search, at the new position.
    let again = observations(&link).unwrap();
    assert_eq!(again.range, s.range);
    assert_eq!(again.cursor, Some(next));
}

#[test]
fn every_refusal_names_its_parameter_and_reason() {
    let long = format!("patient=p-1&x={}", "a".repeat(MAX_QUERY_LEN));
    assert_eq!(problem(&long), (String::new(), Problem::QueryTooLong));
    let many = ["a=1"; MAX_PARAMETERS + 1].join("&");
    assert_eq!(problem(&many), (String::new(), Problem::TooManyParameters));
    let dates = ["date=2026"; MAX_REPEATS + 1].join("&");
    assert_eq!(problem(&dates), ("date".into(), Problem::TooManyRepeats));
    let codes = ["8867-4"; MAX_VALUES + 1].join(",");
    assert_eq!(
        problem(&format!("code={codes}")),
        ("code".into(), Problem::TooManyValues)
    );
    for (query, parameter, expected) in [
        (
            "patient=p-1&patient=p-2",
            "patient",
            Problem::TooManyRepeats,
        ),
        (
            "patient=p-1&subject=p-2",
            "subject",
            Problem::TooManyRepeats,
        ),
        ("_count=1&_count=2", "_count", Problem::TooManyRepeats),
        ("patient=%zz", "patient", Problem::Encoding),
        ("patient=%ff", "patient", Problem::Encoding),
        ("patient=%+1", "patient", Problem::Encoding),
        ("code:text=heart", "code", Problem::UnsupportedModifier),
        (
            "patient:missing=true",
            "patient",
            Problem::UnsupportedModifier,
        ),
        ("patient=Device/d-1", "patient", Problem::InvalidReference),
        ("patient=p_1", "patient", Problem::InvalidReference),
        (
            "patient=https://other/fhir/Patient/p-1",
            "patient",
            Problem::InvalidReference,
        ),
        ("code=a|b|c", "code", Problem::InvalidToken),
        ("_count=0", "_count", Problem::InvalidCount),
        ("_count=10001", "_count", Problem::InvalidCount),
        ("_count=-5", "_count", Problem::InvalidCount),
        ("_count=+5", "_count", Problem::InvalidCount),
        ("_count=ten", "_count", Problem::InvalidCount),
        ("_cursor=abc", "_cursor", Problem::InvalidCursor),
        ("_cursor=01-2", "_cursor", Problem::InvalidCursor),
        (
            "_cursor=999999999999999999-2",
            "_cursor",
            Problem::InvalidCursor,
        ),
        ("_cursor=1-2-3", "_cursor", Problem::InvalidCursor),
        (
            "date=yesterday",
            "date",
            Problem::InvalidDate(DateProblem::Format),
        ),
        (
            "date=2026-11-29T08:00",
            "date",
            Problem::InvalidDate(DateProblem::NoZone),
        ),
        ("_format=xml", "_format", Problem::UnsupportedFormat),
        ("_pretty=yes", "_pretty", Problem::InvalidBoolean),
    ] {
        assert_eq!(problem(query), (parameter.into(), expected), "{query}");
    }
}

#[test]
fn messages_never_echo_values_and_cut_names() {
    let secret = "Jane%20Doe%201970-01-01";
    let e = observations(&format!("patient={secret}")).unwrap_err();
    let text = e.to_string();
    assert!(!text.contains("Jane"), "{text}");
    assert_eq!(
        text,
        "search parameter patient: expected Patient/<id> or <id> (A-Z a-z 0-9 - .)"
    );
    let name = format!("{}\u{1b}[31m", "n".repeat(100));
    let e = parse(ResourceType::Observation, &format!("{name}=1"), true).unwrap_err();
    assert_eq!(e.parameter.len(), 40);
    assert!(e.parameter.chars().all(|c| c.is_ascii_graphic()));
    let e = parse(ResourceType::Observation, "x%1b=1", true).unwrap_err();
    assert_eq!(e.parameter, "x?");
}

#[test]
fn cursors_round_trip() {
    let c = Cursor {
        time: Timestamp::from_unix_millis(1_764_403_200_000).unwrap(),
        row: 7,
    };
    assert_eq!(Cursor::decode(&c.encode()), Some(c));
    assert_eq!(Cursor::decode("0-0").unwrap().row, 0);
    for bad in [
        "",
        "-",
        "1-",
        "-1",
        "1--1",
        "a-1",
        "1-18446744073709551616",
        " 1-1",
    ] {
        assert_eq!(Cursor::decode(bad), None, "{bad:?}");
    }
}

#[test]
fn every_resource_has_its_parameters() {
    for t in ResourceType::ALL {
        assert!(!parameters(*t).is_empty(), "{t:?}");
    }
    let s = parse(
        ResourceType::DetectedIssue,
        "patient=p-1&identified=ge2026",
        true,
    )
    .unwrap();
    assert_eq!(s.range.start, ms("2026-01-01T00:00:00Z"));
    let s = parse(ResourceType::AuditEvent, "patient=p-1&date=2026", true).unwrap();
    assert!(s.patient.is_some());
}

proptest! {
    #[test]
    fn any_query_string_is_parsed_or_refused_without_panic(
        query in ".{0,300}",
        strict in any::<bool>(),
    ) {
        for t in ResourceType::ALL {
            if let Ok(s) = parse(*t, &query, strict) {
                prop_assert!((1..=MAX_COUNT).contains(&s.count));
                // What we link to parses again to the same filters.
                let again = parse(*t, &s.link_query(s.cursor.as_ref()), true).unwrap();
                prop_assert_eq!(&again.codes, &s.codes);
                prop_assert_eq!(again.range, s.range);
                prop_assert_eq!(&again.patient, &s.patient);
            }
        }
    }

    #[test]
    fn query_shaped_strings_never_panic(
        parts in proptest::collection::vec(
            (
                prop_oneof![
                    Just("patient"), Just("subject:Patient"), Just("code"), Just("date"),
                    Just("_count"), Just("_cursor"), Just("_format"), Just("identified"),
                    Just("_id"), Just("x")
                ],
                "[-a-zA-Z0-9%|:,./+\\\\ ]{0,40}",
            ),
            0..12,
        ),
        strict in any::<bool>(),
    ) {
        let query: Vec<String> = parts.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let query = query.join("&");
        for t in ResourceType::ALL {
            if let Err(e) = parse(*t, &query, strict) {
                let text = e.to_string();
                prop_assert!(text.len() < 300);
            }
        }
    }

    #[test]
    fn any_date_value_parses_to_a_range_or_a_reason(value in "(eq|ne|gt|lt|ge|le|sa|eb)?[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,4})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?") {
        let _ = date::parse(&value);
    }
}
