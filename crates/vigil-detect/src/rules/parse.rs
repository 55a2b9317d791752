//! Reading a rules file: TOML syntax first, then every key of every rule, keeping every problem.
//!
//! The file is parsed into toml's span-carrying tree rather than deserialised with serde, so
//! that each problem can name its line and column, unknown keys get a suggestion, and one
//! mistake does not hide the next.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};
use vigil_model::{DeviceClass, DeviceId, Quantity, Severity};

use super::error::Lines;
use super::matcher::{Matcher, ValueTest};
use super::{
    Cidr, EventKind, MAX_COUNT, MAX_DESCRIPTION_CHARS, MAX_FILE_BYTES, MAX_GROUPS, MAX_ID_LEN,
    MAX_LIST_ITEMS, MAX_PROBLEMS, MAX_RULES, MAX_STATE_BYTES, MAX_WITHIN_SECONDS, Per, Position,
    Problem, ProblemKind, Rule, RuleRef, RuleSet, RulesError, Threshold,
};
use crate::Refusal;

/// The keys of a rule, in the order `docs/rules.md` lists them.
const KEYS: &[&str] = &[
    "id",
    "description",
    "severity",
    "technique",
    "enabled",
    "event",
    "devices",
    "device_classes",
    "refusals",
    "quantity",
    "above",
    "below",
    "unit",
    "duplicates",
    "took_over",
    "addresses",
    "not_addresses",
    "count",
    "within_seconds",
    "per",
];

const SEVERITIES: &[(&str, Severity)] = &[
    ("info", Severity::Info),
    ("low", Severity::Low),
    ("medium", Severity::Medium),
    ("high", Severity::High),
    ("critical", Severity::Critical),
];

/// Every refusal; `every_refusal_is_named` fails to compile when one is added to the events.
const REFUSALS: &[Refusal] = &[
    Refusal::ForeignTopic,
    Refusal::MalformedPacket,
    Refusal::ClientIdMismatch,
    Refusal::EnrolmentToken,
    Refusal::BadCertificate,
    Refusal::RevokedCertificate,
    Refusal::InvalidPayload,
];

const ALL_EVENTS: &[EventKind] = EventKind::ALL;
const STORED: &[EventKind] = &[EventKind::Stored];
const CONNECTED: &[EventKind] = &[EventKind::Connected];
const REFUSED: &[EventKind] = &[EventKind::Refused];
const WITH_ADDRESS: &[EventKind] = &[EventKind::Connected, EventKind::Refused];

/// The events a condition key applies to.
fn applies_to(key: &str) -> &'static [EventKind] {
    match key {
        "device_classes" | "quantity" | "above" | "below" | "unit" | "duplicates" => STORED,
        "refusals" => REFUSED,
        "took_over" => CONNECTED,
        "addresses" | "not_addresses" => WITH_ADDRESS,
        _ => ALL_EVENTS,
    }
}

/// The events that carry what `per` counts by.
fn per_applies_to(per: Per) -> &'static [EventKind] {
    match per {
        Per::Device | Per::All => ALL_EVENTS,
        Per::Patient => STORED,
        Per::Address => WITH_ADDRESS,
    }
}

/// Memory a group is counted at besides its event times: key, map entry, queue header.
const GROUP_BYTES: usize = 128;

/// The most a rule's threshold can keep in memory.
fn state_bytes(threshold: &Threshold) -> usize {
    let groups = if threshold.per == Per::All {
        1
    } else {
        MAX_GROUPS
    };
    let times = usize::try_from(threshold.count).unwrap_or(usize::MAX);
    groups.saturating_mul(GROUP_BYTES.saturating_add(times.saturating_mul(8)))
}

/// A key of a rule, where it is, and its value.
struct Field<'a, 'i> {
    key: &'static str,
    key_span: Range<usize>,
    value: &'a Spanned<DeValue<'i>>,
}

/// What is being checked and the problems found so far.
struct Checker<'t> {
    lines: Lines<'t>,
    rule: Option<RuleRef>,
    /// Where each rule id was first seen.
    ids: HashMap<String, Range<usize>>,
    problems: Vec<Problem>,
    omitted: usize,
}

pub(super) fn parse(text: &str) -> Result<RuleSet, RulesError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(RulesError::TooLarge { bytes: text.len() });
    }
    let document = DeTable::parse(text).map_err(|e| RulesError::Syntax {
        position: e.span().map(|s| Position::of(text.as_bytes(), s.start)),
        // The message alone: the error's `Display` quotes the offending line of the file.
        message: e.message().to_owned(),
    })?;
    let mut checker = Checker {
        lines: Lines::new(text.as_bytes()),
        rule: None,
        ids: HashMap::new(),
        problems: Vec::new(),
        omitted: 0,
    };
    let mut tables = Vec::new();
    for (key, value) in document.get_ref().iter() {
        if key.get_ref() != "rule" {
            checker.report(
                Some(key.span()),
                Some(shown(key.get_ref())),
                ProblemKind::UnknownKey {
                    suggestion: suggest(key.get_ref(), ["rule"].into_iter()),
                },
            );
            continue;
        }
        match value.get_ref() {
            DeValue::Array(items) if items.iter().all(|i| i.get_ref().is_table()) => {
                tables.extend(items.iter());
            }
            _ => checker.report(
                Some(key.span()),
                Some("rule".into()),
                ProblemKind::NotRuleTables,
            ),
        }
    }
    if let Some(extra) = tables.get(MAX_RULES) {
        checker.report(
            Some(extra.span()),
            None,
            ProblemKind::TooManyRules { max: MAX_RULES },
        );
        tables.truncate(MAX_RULES);
    }

    let mut rules = Vec::with_capacity(tables.len());
    for (index, table) in tables.into_iter().enumerate() {
        if let Some(entries) = table.get_ref().as_table() {
            checker.rule = Some(RuleRef::Number(index + 1));
            rules.extend(checker.rule_of(table.span(), entries));
        }
    }
    checker.rule = None;

    let bytes = rules
        .iter()
        .filter(|r| r.enabled)
        .filter_map(|r| r.threshold.as_ref())
        .map(state_bytes)
        .fold(0usize, usize::saturating_add);
    if bytes > MAX_STATE_BYTES {
        checker.report(
            None,
            None,
            ProblemKind::StateTooLarge {
                bytes,
                max: MAX_STATE_BYTES,
            },
        );
    }

    if checker.problems.is_empty() && checker.omitted == 0 {
        Ok(RuleSet { rules })
    } else {
        let mut problems = checker.problems;
        problems.sort_by_key(|p| (p.position.is_none(), p.position));
        Err(RulesError::Invalid {
            problems,
            omitted: checker.omitted,
        })
    }
}

/// A key as written, for an error: its name is the only text of the file errors show, and even
/// that is cut short and escaped so that it cannot fill or forge lines of a log.
fn shown(key: &str) -> String {
    let mut shown: String = key.chars().take(64).flat_map(char::escape_debug).collect();
    if key.chars().nth(64).is_some() {
        shown.push('…');
    }
    shown
}

impl<'t> Checker<'t> {
    fn position(&self, span: &Range<usize>) -> Position {
        self.lines.position(span.start)
    }

    fn report(&mut self, span: Option<Range<usize>>, key: Option<String>, kind: ProblemKind) {
        if self.problems.len() >= MAX_PROBLEMS {
            self.omitted += 1;
            return;
        }
        self.problems.push(Problem {
            position: span.map(|s| self.position(&s)),
            rule: self.rule.clone(),
            key,
            kind,
        });
    }

    fn problem(&mut self, field: &Field<'_, '_>, kind: ProblemKind) {
        self.report(Some(field.value.span()), Some(field.key.into()), kind);
    }

    /// One rule, or `None` when it has problems (all of them reported).
    fn rule_of(&mut self, span: Range<usize>, entries: &DeTable<'_>) -> Option<Rule> {
        let before = self.problems.len() + self.omitted;
        // The id first, so that every other problem of the rule can name it.
        let id = self.id(span.clone(), entries);
        let mut fields: HashMap<&'static str, Field<'_, '_>> = HashMap::new();
        for (key, value) in entries.iter() {
            match KEYS.iter().find(|k| **k == key.get_ref()) {
                Some(known) => {
                    if *known == "id" {
                        continue;
                    }
                    fields.insert(
                        known,
                        Field {
                            key: known,
                            key_span: key.span(),
                            value,
                        },
                    );
                }
                None => self.report(
                    Some(key.span()),
                    Some(shown(key.get_ref())),
                    ProblemKind::UnknownKey {
                        suggestion: suggest(key.get_ref(), KEYS.iter().copied()),
                    },
                ),
            }
        }

        let missing = |checker: &mut Checker<'_>, key: &str, with: Option<&'static str>| {
            checker.report(
                Some(span.clone()),
                Some(key.into()),
                ProblemKind::Missing { with },
            );
        };

        let description = match fields.get("description") {
            None => {
                missing(self, "description", None);
                None
            }
            Some(field) => self.string(field).and_then(|d| {
                let chars = d.chars().count();
                if (1..=MAX_DESCRIPTION_CHARS).contains(&chars)
                    && !d.chars().any(char::is_control)
                    && !d.trim().is_empty()
                {
                    Some(d.to_owned())
                } else {
                    self.problem(field, ProblemKind::BadDescription);
                    None
                }
            }),
        };
        let severity = match fields.get("severity") {
            None => {
                missing(self, "severity", None);
                None
            }
            Some(field) => self
                .string(field)
                .and_then(|s| self.name(field, field.value.span(), s, SEVERITIES)),
        };
        let technique = fields.get("technique").and_then(|field| {
            self.string(field).and_then(|t| {
                if is_technique(t) {
                    Some(t.to_owned())
                } else {
                    self.problem(field, ProblemKind::BadTechnique);
                    None
                }
            })
        });
        let enabled = fields.get("enabled").map(|f| self.boolean(f));
        let events: Vec<(&str, EventKind)> =
            EventKind::ALL.iter().map(|e| (e.as_str(), *e)).collect();
        let event = match fields.get("event") {
            None => {
                missing(self, "event", None);
                None
            }
            Some(field) => self
                .string(field)
                .and_then(|s| self.name(field, field.value.span(), s, &events)),
        };

        let usable = |checker: &mut Checker<'_>, key: &str| condition(checker, &fields, event, key);
        let devices = usable(self, "devices").and_then(|f| self.devices(f));
        let classes = usable(self, "device_classes").and_then(|f| {
            let names: Vec<(&str, DeviceClass)> = DeviceClass::ALL
                .iter()
                .map(|c| (c.spec().key, *c))
                .collect();
            self.names(f, &names)
        });
        let refusals = usable(self, "refusals").and_then(|f| {
            let names: Vec<(&str, Refusal)> = REFUSALS.iter().map(|r| (r.as_str(), *r)).collect();
            self.names(f, &names)
        });
        let addresses = usable(self, "addresses").and_then(|f| self.cidrs(f));
        let not_addresses = usable(self, "not_addresses").and_then(|f| self.cidrs(f));
        let duplicates = usable(self, "duplicates").and_then(|f| self.boolean(f));
        let took_over = usable(self, "took_over").and_then(|f| self.boolean(f));
        let quantity_field = usable(self, "quantity");
        let above_field = usable(self, "above");
        let below_field = usable(self, "below");
        let unit_field = usable(self, "unit");
        let value = self.value_test(
            span.clone(),
            quantity_field,
            above_field,
            below_field,
            unit_field,
        );

        let threshold = self.threshold(span.clone(), &fields, event);

        if self.problems.len() + self.omitted > before {
            return None;
        }
        let id = id?;
        let event = event?;
        let matcher = Matcher {
            event,
            devices: devices.unwrap_or_default(),
            classes: classes.unwrap_or_default(),
            refusals: refusals.unwrap_or_default(),
            value: value?,
            duplicates,
            took_over,
            addresses: addresses.unwrap_or_default(),
            not_addresses: not_addresses.unwrap_or_default(),
        };
        let rule = Rule {
            id,
            description: description?,
            severity: severity?,
            technique,
            enabled: match enabled {
                None => true,
                Some(enabled) => enabled?,
            },
            matcher,
            threshold: threshold?,
            line: self.position(&span).line,
        };
        Some(rule)
    }

    /// The rule's id if it is a valid one not used before; from here on, problems name the
    /// rule by it.
    fn id(&mut self, rule_span: Range<usize>, entries: &DeTable<'_>) -> Option<String> {
        let Some(value) = entries.get("id") else {
            self.report(
                Some(rule_span),
                Some("id".into()),
                ProblemKind::Missing { with: None },
            );
            return None;
        };
        let field = Field {
            key: "id",
            key_span: value.span(),
            value,
        };
        let id = self.string(&field)?;
        if !is_slug(id) {
            self.problem(&field, ProblemKind::BadId);
            return None;
        }
        // A second rule with the id keeps being named by its number, to tell the two apart.
        if let Some(first) = self.ids.get(id) {
            let first = self.position(first);
            self.problem(&field, ProblemKind::DuplicateId { first });
            return None;
        }
        self.rule = Some(RuleRef::Id(id.to_owned()));
        self.ids.insert(id.to_owned(), value.span());
        Some(id.to_owned())
    }

    /// The reading condition: `Some(None)` when there is none, `None` on a problem.
    fn value_test(
        &mut self,
        rule_span: Range<usize>,
        quantity: Option<&Field<'_, '_>>,
        above: Option<&Field<'_, '_>>,
        below: Option<&Field<'_, '_>>,
        unit: Option<&Field<'_, '_>>,
    ) -> Option<Option<ValueTest>> {
        let quantity_value = quantity.map(|f| self.quantity(f));
        let above_value = above.map(|f| self.number(f));
        let below_value = below.map(|f| self.number(f));
        let unit_value = unit.map(|f| self.string(f));
        let limit = above.or(below);
        match (limit, unit) {
            (None, Some(unit)) => {
                self.report(
                    Some(unit.key_span.clone()),
                    Some("unit".into()),
                    ProblemKind::Requires {
                        needs: "`above` or `below` (the unit they are written in)",
                    },
                );
                return None;
            }
            (Some(limit), _) => {
                for (field, key) in [(quantity, "quantity"), (unit, "unit")] {
                    if field.is_none() {
                        self.report(
                            Some(rule_span.clone()),
                            Some(key.into()),
                            ProblemKind::Missing {
                                with: Some(limit.key),
                            },
                        );
                    }
                }
            }
            (None, None) => {}
        }
        let quantity_value = match quantity_value {
            // Without a quantity, a limit's missing quantity was reported just above.
            None => return if limit.is_some() { None } else { Some(None) },
            Some(q) => q?,
        };
        if limit.is_none() {
            return Some(Some(ValueTest {
                quantity: quantity_value,
                above: None,
                below: None,
            }));
        }
        let (Some(unit), Some(Some(unit_text))) = (unit, unit_value) else {
            return None;
        };
        let spec = quantity_value.spec();
        if !spec.units.iter().any(|u| u.unit.ucum == unit_text) {
            self.problem(
                unit,
                ProblemKind::UnitNotAccepted {
                    quantity: quantity_value,
                    accepted: spec
                        .units
                        .iter()
                        .map(|u| u.unit.ucum)
                        .collect::<Vec<_>>()
                        .join(", "),
                },
            );
            return None;
        }
        // In the canonical unit, as readings reach detection; a limit that overflows there
        // (1e308 mL/min) is refused like one written as `inf`.
        let mut canonical =
            |field: Option<&Field<'_, '_>>, value: Option<Option<f64>>| match (field, value) {
                (Some(field), Some(Some(v))) => {
                    match quantity_value
                        .to_canonical(v, unit_text)
                        .ok()
                        .filter(|c| c.is_finite())
                    {
                        Some(c) => Some(Some(c)),
                        None => {
                            self.problem(field, ProblemKind::NotFinite);
                            None
                        }
                    }
                }
                (_, Some(None)) => None,
                _ => Some(None),
            };
        let above_c = canonical(above, above_value);
        let below_c = canonical(below, below_value);
        let (above_c, below_c) = (above_c?, below_c?);
        if let (Some(a), Some(b), Some(field)) = (above_c, below_c, above)
            && a <= b
        {
            self.problem(field, ProblemKind::AboveNotOverBelow);
            return None;
        }
        Some(Some(ValueTest {
            quantity: quantity_value,
            above: above_c,
            below: below_c,
        }))
    }

    /// The threshold: `Some(None)` when there is none, `None` on a problem.
    fn threshold(
        &mut self,
        rule_span: Range<usize>,
        fields: &HashMap<&'static str, Field<'_, '_>>,
        event: Option<EventKind>,
    ) -> Option<Option<Threshold>> {
        let keys = ["count", "within_seconds", "per"];
        let Some(present) = keys.iter().find(|k| fields.contains_key(*k)) else {
            return Some(None);
        };
        for key in keys {
            if !fields.contains_key(key) {
                self.report(
                    Some(rule_span.clone()),
                    Some(key.into()),
                    ProblemKind::Missing {
                        with: Some(present),
                    },
                );
            }
        }
        let count = fields
            .get("count")
            .and_then(|f| self.whole(f, 2, MAX_COUNT));
        let within_seconds = fields
            .get("within_seconds")
            .and_then(|f| self.whole(f, 1, MAX_WITHIN_SECONDS));
        let pers: Vec<(&str, Per)> = Per::ALL.iter().map(|p| (p.as_str(), *p)).collect();
        let per = fields.get("per").and_then(|field| {
            let per = self
                .string(field)
                .and_then(|s| self.name(field, field.value.span(), s, &pers))?;
            if let Some(event) = event {
                let applies = per_applies_to(per);
                if !applies.contains(&event) {
                    self.problem(
                        field,
                        ProblemKind::PerNotForEvent {
                            per,
                            event,
                            applies_to: applies,
                        },
                    );
                    return None;
                }
            }
            Some(per)
        });
        Some(Some(Threshold {
            count: count?,
            within_seconds: within_seconds?,
            per: per?,
        }))
    }

    fn string<'v>(&mut self, field: &Field<'v, '_>) -> Option<&'v str> {
        match field.value.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.problem(
                    field,
                    ProblemKind::WrongType {
                        expected: "a string",
                    },
                );
                None
            }
        }
    }

    fn boolean(&mut self, field: &Field<'_, '_>) -> Option<bool> {
        match field.value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.problem(
                    field,
                    ProblemKind::WrongType {
                        expected: "true or false",
                    },
                );
                None
            }
        }
    }

    fn whole(&mut self, field: &Field<'_, '_>, min: u32, max: u32) -> Option<u32> {
        let DeValue::Integer(integer) = field.value.get_ref() else {
            self.problem(
                field,
                ProblemKind::WrongType {
                    expected: "a whole number",
                },
            );
            return None;
        };
        let value = i64::from_str_radix(integer.as_str(), integer.radix())
            .ok()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| (min..=max).contains(v));
        if value.is_none() {
            self.problem(field, ProblemKind::OutOfRange { min, max });
        }
        value
    }

    fn number(&mut self, field: &Field<'_, '_>) -> Option<f64> {
        let value = match field.value.get_ref() {
            #[allow(clippy::cast_precision_loss)] // a limit is far below 2^53
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|v| v as f64),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            _ => {
                self.problem(
                    field,
                    ProblemKind::WrongType {
                        expected: "a number",
                    },
                );
                return None;
            }
        };
        match value {
            Some(v) if v.is_finite() => Some(v),
            _ => {
                self.problem(field, ProblemKind::NotFinite);
                None
            }
        }
    }

    /// A name from `allowed`, with a suggestion when it is not one.
    fn name<T: Copy>(
        &mut self,
        field: &Field<'_, '_>,
        span: Range<usize>,
        text: &str,
        allowed: &[(&str, T)],
    ) -> Option<T> {
        if let Some((_, value)) = allowed.iter().find(|(name, _)| *name == text) {
            return Some(*value);
        }
        self.report(
            Some(span),
            Some(field.key.into()),
            ProblemKind::UnknownName {
                allowed: allowed
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", "),
                suggestion: suggest(text, allowed.iter().map(|(name, _)| *name)).map(str::to_owned),
            },
        );
        None
    }

    /// A list of strings, each turned into a `T` by `item` (which reports its own problems).
    fn list<T>(
        &mut self,
        field: &Field<'_, '_>,
        mut item: impl FnMut(&mut Self, usize, Range<usize>, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let DeValue::Array(items) = field.value.get_ref() else {
            self.problem(
                field,
                ProblemKind::WrongType {
                    expected: "a list of strings",
                },
            );
            return None;
        };
        if items.is_empty() {
            self.problem(field, ProblemKind::EmptyList);
            return None;
        }
        if items.len() > MAX_LIST_ITEMS {
            self.problem(
                field,
                ProblemKind::TooManyItems {
                    max: MAX_LIST_ITEMS,
                },
            );
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (index, value) in items.iter().enumerate() {
            match value.get_ref() {
                DeValue::String(text) => match item(self, index + 1, value.span(), text) {
                    Some(v) => out.push(v),
                    None => ok = false,
                },
                _ => {
                    self.report(
                        Some(value.span()),
                        Some(field.key.into()),
                        ProblemKind::WrongType {
                            expected: "a list of strings",
                        },
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn names<T: Copy>(&mut self, field: &Field<'_, '_>, allowed: &[(&str, T)]) -> Option<Vec<T>> {
        self.list(field, |checker, _, span, text| {
            checker.name(field, span, text, allowed)
        })
    }

    fn devices(&mut self, field: &Field<'_, '_>) -> Option<BTreeSet<DeviceId>> {
        let devices = self.list(field, |checker, item, span, text| {
            DeviceId::new(text)
                .map_err(|error| {
                    checker.report(
                        Some(span),
                        Some(field.key.into()),
                        ProblemKind::BadDeviceId { item, error },
                    );
                })
                .ok()
        })?;
        Some(devices.into_iter().collect())
    }

    fn cidrs(&mut self, field: &Field<'_, '_>) -> Option<Vec<Cidr>> {
        self.list(field, |checker, item, span, text| {
            text.parse::<Cidr>()
                .map_err(|error| {
                    checker.report(
                        Some(span),
                        Some(field.key.into()),
                        ProblemKind::BadAddress { item, error },
                    );
                })
                .ok()
        })
    }

    /// A quantity by Vigil's name (`infusion_rate`), MDC reference id (`MDC_FLOW_FLUID_PUMP`)
    /// or context-free MDC code (`157784`).
    fn quantity(&mut self, field: &Field<'_, '_>) -> Option<Quantity> {
        let found = match field.value.get_ref() {
            DeValue::String(text) => {
                Quantity::from_key(text).or_else(|| Quantity::from_mdc_refid(text))
            }
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .and_then(|code| u32::try_from(code).ok())
                .and_then(Quantity::from_mdc_code),
            _ => {
                self.problem(
                    field,
                    ProblemKind::WrongType {
                        expected: "a quantity's name or MDC code",
                    },
                );
                return None;
            }
        };
        if found.is_none() {
            let keys = Quantity::ALL.iter().map(|q| q.spec().key);
            let suggestion = match field.value.get_ref() {
                DeValue::String(text) => suggest(text, keys.clone()).map(str::to_owned),
                _ => None,
            };
            self.problem(
                field,
                ProblemKind::UnknownName {
                    allowed: format!(
                        "{}, or an IEEE 11073 MDC code or reference id of one of them \
                         (docs/vocabulary.md)",
                        keys.collect::<Vec<_>>().join(", ")
                    ),
                    suggestion,
                },
            );
        }
        found
    }
}

/// The field of a condition `key`, if the rule has one that its event carries; one it does not
/// carry is refused rather than ignored, as the rule would silently never match.
fn condition<'f, 'a, 'i>(
    checker: &mut Checker<'_>,
    fields: &'f HashMap<&'static str, Field<'a, 'i>>,
    event: Option<EventKind>,
    key: &str,
) -> Option<&'f Field<'a, 'i>> {
    let field = fields.get(key)?;
    if let Some(event) = event {
        let applies = applies_to(key);
        if !applies.contains(&event) {
            checker.report(
                Some(field.key_span.clone()),
                Some(field.key.into()),
                ProblemKind::NotForEvent {
                    event,
                    applies_to: applies,
                },
            );
            return None;
        }
    }
    Some(field)
}

/// `a-z 0-9 - _`, starting with a letter or a digit, at most [`MAX_ID_LEN`] bytes.
fn is_slug(id: &str) -> bool {
    id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// `T0` and three digits: the form of MITRE ATT&CK for ICS technique ids
/// (<https://attack.mitre.org/techniques/ics/>, T0800 to T0896 today).
fn is_technique(text: &str) -> bool {
    text.len() == 5 && text.starts_with("T0") && text.bytes().skip(2).all(|b| b.is_ascii_digit())
}

/// The known name closest to `wrong`, when it is within two edits.
fn suggest<'a>(wrong: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    // Longer text is no typo of a short name, and would make the distance costly.
    if wrong.chars().count() > 64 {
        return None;
    }
    known
        .map(|k| (edit_distance(&wrong.to_lowercase(), k), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance (as vigil-config's, which this crate may not import).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests;
