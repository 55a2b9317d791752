use super::*;
use proptest::prelude::*;

const SECOND_SOURCE: &str = include_str!("second_source.tsv");

#[test]
fn table_is_in_all_order_and_complete() {
    assert_eq!(SPECS.len(), Quantity::ALL.len());
    for (index, (spec, quantity)) in SPECS.iter().zip(Quantity::ALL).enumerate() {
        assert_eq!(spec.quantity, *quantity);
        assert_eq!(
            *quantity as usize, index,
            "declaration order is table order"
        );
        assert_eq!(quantity.spec().key, spec.key);
        assert_eq!(Quantity::from_key(spec.key), Some(*quantity));
        assert_eq!(Quantity::from_mdc_code(spec.mdc.code()), Some(*quantity));
        assert_eq!(Quantity::from_mdc_refid(spec.mdc.refid), Some(*quantity));
    }
}

#[test]
fn codes_and_keys_are_unique() {
    let mut codes: Vec<u32> = SPECS
        .iter()
        .flat_map(|s| std::iter::once(s.mdc).chain(s.mdc_aliases.iter().copied()))
        .map(MdcCode::code)
        .collect();
    let total = codes.len();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), total, "an MDC code names two quantities");
    let mut keys: Vec<_> = SPECS.iter().map(|s| s.key).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), SPECS.len());
}

#[test]
fn units_and_limits_are_well_formed() {
    for spec in SPECS {
        let first = spec.units.first().expect("every quantity has a unit");
        assert_eq!(first.conversion, Conversion::IDENTITY, "{}", spec.key);
        let mut ucum: Vec<_> = spec.units.iter().map(|u| u.unit.ucum).collect();
        ucum.sort_unstable();
        ucum.dedup();
        assert_eq!(ucum.len(), spec.units.len(), "{}: duplicate unit", spec.key);
        for u in spec.units {
            assert!(u.conversion.scale.is_finite() && u.conversion.scale > 0.0);
            assert!(u.conversion.offset.is_finite());
        }
        let l = spec.limits;
        assert!(
            l.min.is_finite() && l.max.is_finite() && l.min < l.max,
            "{}",
            spec.key
        );
        if let Some(rate) = l.max_change_per_minute {
            assert!(rate > 0.0 && rate < l.max - l.min, "{}", spec.key);
        }
        if let Some(fall) = l.max_fall_per_minute {
            let rise = l.max_change_per_minute.unwrap_or(0.0);
            assert!(
                fall > 0.0 && fall <= rise,
                "{}: a fall bound needs a looser rise bound",
                spec.key
            );
        }
        assert!(!spec.sources.is_empty());
    }
}

#[test]
fn matches_the_second_source() {
    let rows: Vec<Vec<&str>> = SECOND_SOURCE
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), SPECS.len(), "one row per quantity");
    for row in rows {
        let [key, refid, code, loinc, unit, unit_code, _seen_in] = row[..] else {
            panic!("malformed row {row:?}");
        };
        let spec = Quantity::from_key(key)
            .unwrap_or_else(|| panic!("{key} missing"))
            .spec();
        assert_eq!(spec.mdc.refid, refid, "{key}");
        assert_eq!(spec.mdc.code().to_string(), code, "{key}: MDC code");
        let loinc_codes: Vec<_> = spec.loinc.iter().map(|l| l.code).collect();
        let expected: Vec<_> = if loinc == "-" {
            Vec::new()
        } else {
            loinc.split(' ').collect()
        };
        assert_eq!(loinc_codes, expected, "{key}: LOINC");
        let canonical = spec.canonical_unit();
        assert_eq!(canonical.ucum, unit, "{key}: canonical unit");
        let dim = canonical
            .mdc
            .map_or("-".to_owned(), |m| m.code().to_string());
        assert_eq!(dim, unit_code, "{key}: MDC unit code");
    }
}

#[test]
fn loinc_codes_have_valid_check_digits() {
    // LOINC check digit: mod 10 over the digits, as LOINC's users' guide (appendix) defines it.
    fn check_digit(number: &str) -> u32 {
        let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
        let mut sum = 0;
        for (i, d) in digits.iter().rev().enumerate() {
            sum += if i % 2 == 0 {
                let doubled = d * 2;
                doubled / 10 + doubled % 10
            } else {
                *d
            };
        }
        (10 - sum % 10) % 10
    }
    for spec in SPECS {
        for loinc in spec.loinc {
            let (number, check) = loinc.code.split_once('-').expect("NNNN-C");
            assert_eq!(
                check.parse::<u32>().unwrap(),
                check_digit(number),
                "{}: {}",
                spec.key,
                loinc.code
            );
        }
    }
}

#[test]
fn known_conversions() {
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * b.abs().max(1.0);
    let t = Quantity::BodyTemperature;
    assert!(close(t.to_canonical(98.6, "[degF]").unwrap(), 37.0));
    assert!(close(t.to_canonical(32.0, "[degF]").unwrap(), 0.0));
    assert!(close(t.to_canonical(310.15, "K").unwrap(), 37.0));
    let g = Quantity::GlucoseInterstitial;
    assert!(close(g.to_canonical(5.5, "mmol/L").unwrap(), 99.0858));
    assert!(close(g.to_canonical(1.0, "mmol/L").unwrap(), 18.0156));
    let p = Quantity::NibpSystolic;
    assert!(close(p.to_canonical(0.133_322, "kPa").unwrap(), 1.0));
    assert!(close(Quantity::Spo2.to_canonical(0.97, "1").unwrap(), 97.0));
    assert!(close(
        Quantity::InfusionRate.to_canonical(2.0, "mL/min").unwrap(),
        120.0
    ));
}

#[test]
fn refuses_unknown_units_and_non_finite_values() {
    let err = Quantity::InsulinBasalRate
        .to_canonical(1.0, "U/h")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unit \"U/h\" is not accepted for insulin_basal_rate; accepted: [iU]/h"
    );
    assert!(matches!(
        Quantity::HeartRate.to_canonical(f64::NAN, "/min"),
        Err(crate::quantity::ValueError::NotFinite { .. })
    ));
    let long = "x".repeat(10_000);
    let err = Quantity::HeartRate.to_canonical(1.0, &long).unwrap_err();
    assert!(err.to_string().len() < 200, "error text is bounded");
}

#[test]
fn range_and_change_checks() {
    use crate::quantity::Implausible;
    let t = Quantity::BodyTemperature;
    assert_eq!(t.check_range(37.0), Ok(()));
    assert_eq!(t.check_range(9.0), Err(Implausible::BelowMinimum(t)));
    assert_eq!(t.check_range(48.0), Err(Implausible::AboveMaximum(t)));
    assert_eq!(t.check_change(37.0, 37.5, 60_000), Ok(()));
    assert_eq!(
        t.check_change(37.0, 39.0, 60_000),
        Err(Implausible::ChangedTooFast(t))
    );
    assert_eq!(t.check_change(37.0, 39.0, 180_000), Ok(()));
    // Same-instant readings compare as one second apart.
    assert_eq!(
        t.check_change(37.0, 37.5, 0),
        Err(Implausible::ChangedTooFast(t))
    );
    // Heart rate may step at once (arrhythmia onset).
    assert_eq!(Quantity::HeartRate.check_change(70.0, 220.0, 1000), Ok(()));
    // Interstitial glucose may rise 15 mg/dL a minute (dextrose) but fall only 10.
    let g = Quantity::GlucoseInterstitial;
    assert_eq!(g.check_change(50.0, 110.0, 300_000), Ok(()));
    assert_eq!(g.check_change(110.0, 60.0, 300_000), Ok(()));
    assert_eq!(
        g.check_change(110.0, 48.0, 300_000),
        Err(Implausible::ChangedTooFast(g))
    );
    assert_eq!(
        g.check_change(50.0, 130.0, 300_000),
        Err(Implausible::ChangedTooFast(g))
    );
}

#[test]
fn mdc_aliases_resolve() {
    assert_eq!(
        Quantity::from_mdc_code(151_578),
        Some(Quantity::RespirationRate)
    );
    assert_eq!(
        Quantity::from_mdc_refid("MDC_TTHOR_RESP_RATE"),
        Some(Quantity::RespirationRate)
    );
    assert_eq!(
        Quantity::from_mdc_code(150_324),
        None,
        "MDC_SAT_O2_ART is not SpO2"
    );
}

fn any_unit() -> impl Strategy<Value = (Quantity, usize)> {
    proptest::sample::select(Quantity::ALL).prop_flat_map(|q| (Just(q), 0..q.spec().units.len()))
}

proptest! {
    #[test]
    fn conversions_round_trip((quantity, index) in any_unit(), value in -1.0e6..1.0e6f64) {
        let unit = quantity.spec().units[index];
        let canonical = quantity.to_canonical(value, unit.unit.ucum).unwrap();
        let back = unit.conversion.from_canonical(canonical);
        prop_assert!((back - value).abs() <= 1e-9 * value.abs().max(1.0),
            "{quantity} {}: {value} -> {canonical} -> {back}", unit.unit.ucum);
    }

    #[test]
    fn conversions_preserve_order((quantity, index) in any_unit(), a in -1.0e6..1.0e6f64, b in -1.0e6..1.0e6f64) {
        let ucum = quantity.spec().units[index].unit.ucum;
        let (ca, cb) = (quantity.to_canonical(a, ucum).unwrap(), quantity.to_canonical(b, ucum).unwrap());
        prop_assert!(a >= b || ca <= cb, "order reversed");
    }
}
