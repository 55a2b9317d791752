//! Running the rules, and swapping them while the hub runs.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use vigil_model::{Alert, AlertKind, DeviceId, Evidence, PatientId};

use super::matcher::Hit;
use super::{EventKind, MAX_GROUPS, Per, Rule, RuleSet, Threshold};
use crate::{Detector, Event};

/// A shared handle on the rules in force. Cloning it is cheap; every clone sees the same rules.
///
/// The hub keeps one clone to [`replace`](RulesHandle::replace) the rules when the file
/// changes (from any thread) and gives another to the [`RulesDetector`], which picks the new
/// rules up at its next event.
#[derive(Debug, Clone)]
pub struct RulesHandle {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Read on every event without taking the lock; written under it.
    generation: AtomicU64,
    current: RwLock<(u64, Arc<RuleSet>)>,
}

impl RulesHandle {
    /// A handle on `rules`, generation 0.
    pub fn new(rules: RuleSet) -> RulesHandle {
        RulesHandle {
            shared: Arc::new(Shared {
                generation: AtomicU64::new(0),
                current: RwLock::new((0, Arc::new(rules))),
            }),
        }
    }

    /// Puts `rules` in force; the new generation.
    pub fn replace(&self, rules: RuleSet) -> u64 {
        // The lock only guards a pointer swap: a panic while holding it leaves nothing half
        // written, so a poisoned lock is used as it is.
        let mut current = self
            .shared
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let generation = current.0.wrapping_add(1);
        *current = (generation, Arc::new(rules));
        self.shared.generation.store(generation, Ordering::Release);
        generation
    }

    /// The generation in force: 0 for the rules the handle was made with, then one more at
    /// each [`replace`](RulesHandle::replace).
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.current().1
    }

    fn current(&self) -> (u64, Arc<RuleSet>) {
        let current = self
            .shared
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        (current.0, Arc::clone(&current.1))
    }
}

/// What a threshold counts separately.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Group {
    All,
    Device(DeviceId),
    Patient(PatientId),
    Address(IpAddr),
}

impl Group {
    /// The group of a matching event; `None` when the event does not carry what is counted.
    fn of(per: Per, hit: &Hit<'_>) -> Option<Group> {
        match per {
            Per::All => Some(Group::All),
            Per::Device => hit.device.cloned().map(Group::Device),
            Per::Patient => hit.patient.cloned().map(Group::Patient),
            // IPv4 through a dual-stack listener is the same address as IPv4.
            Per::Address => hit.address.map(|a| Group::Address(a.to_canonical())),
        }
    }
}

/// The recent matching events of one threshold rule: their times (Unix milliseconds), per
/// group, in the order they arrived.
#[derive(Debug, Default)]
struct Window {
    groups: HashMap<Group, VecDeque<i64>>,
}

impl Window {
    /// Counts an event of `group` at `now`; whether it reaches the threshold (and the group's
    /// count starts again).
    fn count(&mut self, group: Group, now: i64, threshold: Threshold) -> bool {
        let window_ms = i64::from(threshold.within_seconds) * 1000;
        if self.groups.len() >= MAX_GROUPS && !self.groups.contains_key(&group) {
            self.make_room(now, window_ms);
        }
        let times = self.groups.entry(group).or_default();
        while times.front().is_some_and(|t| now - t >= window_ms) {
            times.pop_front();
        }
        times.push_back(now);
        if times.len() >= usize::try_from(threshold.count).unwrap_or(usize::MAX) {
            times.clear();
            true
        } else {
            false
        }
    }

    /// Forgets groups with nothing inside the window, then, if that was not enough, the eighth
    /// of the groups whose last events are the oldest. An eighth at once rather than one group
    /// per arrival: a scan from ever new addresses then costs a pass over the groups every
    /// [`MAX_GROUPS`] / 8 addresses, not at every one.
    fn make_room(&mut self, now: i64, window_ms: i64) {
        self.groups
            .retain(|_, times| times.back().is_some_and(|t| now - t < window_ms));
        if self.groups.len() < MAX_GROUPS {
            return;
        }
        let last = |times: &VecDeque<i64>| times.back().copied().unwrap_or(i64::MIN);
        let mut lasts: Vec<i64> = self.groups.values().map(last).collect();
        let forget = MAX_GROUPS / 8;
        let (_, cutoff, _) = lasts.select_nth_unstable(forget - 1);
        let cutoff = *cutoff;
        let mut forgotten = 0;
        self.groups.retain(|_, times| {
            let stale = forgotten < forget && last(times) <= cutoff;
            forgotten += usize::from(stale);
            !stale
        });
    }
}

/// Runs the rules of a [`RulesHandle`] over every event.
#[derive(Debug)]
pub struct RulesDetector {
    handle: RulesHandle,
    generation: u64,
    rules: Arc<RuleSet>,
    /// One per rule, in the same order: the counts of enabled rules with a threshold.
    windows: Vec<Option<Window>>,
    /// The enabled rules of each event kind (indices into the rules), in file order.
    by_event: [Vec<usize>; 4],
}

impl RulesDetector {
    /// A detector running the rules in force in `handle`, now and after every replacement.
    pub fn new(handle: RulesHandle) -> RulesDetector {
        let (generation, rules) = handle.current();
        let windows = rules.rules.iter().map(fresh_window).collect();
        let by_event = by_event(&rules);
        RulesDetector {
            handle,
            generation,
            rules,
            windows,
            by_event,
        }
    }

    /// The generation of the rules this detector last ran.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Takes up new rules if the handle has them, keeping the counts of each rule that counts
    /// the same events the same way as its namesake in the old rules.
    fn refresh(&mut self) {
        if self.handle.generation() == self.generation {
            return;
        }
        let (generation, rules) = self.handle.current();
        let old_rules = std::mem::replace(&mut self.rules, rules);
        let mut old_windows = std::mem::take(&mut self.windows);
        let old_index: HashMap<&str, usize> = old_rules
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.as_str(), i))
            .collect();
        self.windows = self
            .rules
            .rules
            .iter()
            .map(|rule| {
                old_index
                    .get(rule.id.as_str())
                    .filter(|i| {
                        old_rules
                            .rules
                            .get(**i)
                            .is_some_and(|o| o.counts_like(rule))
                    })
                    .and_then(|i| old_windows.get_mut(*i).and_then(Option::take))
                    .or_else(|| fresh_window(rule))
            })
            .collect();
        self.by_event = by_event(&self.rules);
        self.generation = generation;
    }
}

fn slot(kind: EventKind) -> usize {
    match kind {
        EventKind::Stored => 0,
        EventKind::Connected => 1,
        EventKind::Refused => 2,
        EventKind::Flooding => 3,
    }
}

fn by_event(rules: &RuleSet) -> [Vec<usize>; 4] {
    let mut by_event: [Vec<usize>; 4] = Default::default();
    for (index, rule) in rules.rules.iter().enumerate() {
        if rule.enabled
            && let Some(slot) = by_event.get_mut(slot(rule.event()))
        {
            slot.push(index);
        }
    }
    by_event
}

fn fresh_window(rule: &Rule) -> Option<Window> {
    (rule.enabled && rule.threshold.is_some()).then(Window::default)
}

impl Detector for RulesDetector {
    fn name(&self) -> &'static str {
        "rules"
    }

    fn observe(&mut self, event: &Event, alerts: &mut Vec<Alert>) {
        self.refresh();
        let now = event.at().unix_millis();
        let kind = match event {
            Event::Stored { .. } => EventKind::Stored,
            Event::Connected { .. } => EventKind::Connected,
            Event::Refused { .. } => EventKind::Refused,
            Event::Flooding { .. } => EventKind::Flooding,
        };
        for index in self.by_event.get(slot(kind)).into_iter().flatten() {
            let (Some(rule), Some(window)) =
                (self.rules.rules.get(*index), self.windows.get_mut(*index))
            else {
                continue;
            };
            let Some(hit) = rule.matcher.matches(event) else {
                continue;
            };
            let fires = match (rule.threshold, window) {
                (None, _) => true,
                (Some(threshold), Some(window)) => Group::of(threshold.per, &hit)
                    .is_some_and(|group| window.count(group, now, threshold)),
                // Every enabled threshold rule has its window (`fresh_window`).
                (Some(_), None) => false,
            };
            if fires {
                alerts.push(alert(rule, event, &hit));
            }
        }
    }
}

fn alert(rule: &Rule, event: &Event, hit: &Hit<'_>) -> Alert {
    let mut evidence = vec![Evidence::Fact {
        name: "rule".into(),
        value: rule.id.clone(),
    }];
    if let Some(threshold) = rule.threshold {
        for (name, value) in [
            ("count", threshold.count.to_string()),
            ("within_seconds", threshold.within_seconds.to_string()),
            ("per", threshold.per.as_str().to_owned()),
        ] {
            evidence.push(Evidence::Fact {
                name: name.into(),
                value,
            });
        }
    }
    hit.evidence(event, &mut evidence);
    Alert {
        time: event.at(),
        severity: rule.severity,
        kind: AlertKind::Rule,
        device: hit.device.cloned(),
        patient: hit.patient.cloned(),
        evidence,
        attack_technique: rule.technique.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use vigil_model::{DeviceClass, Phi, Quantity, Severity, Timestamp};

    use super::*;
    use crate::{Reading, Refusal};

    const T0: i64 = 1_800_000_000_000;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(T0 + secs * 1000).unwrap()
    }

    fn refused(secs: i64, address: &str, device: Option<&str>) -> Event {
        Event::Refused {
            at: at(secs),
            device: device.map(|d| DeviceId::new(d).unwrap()),
            address: Some(address.parse().unwrap()),
            refusal: Refusal::BadCertificate,
        }
    }

    fn rate(secs: i64, device: &str, patient: &str, value: f64) -> Event {
        Event::Stored {
            at: at(secs),
            device: DeviceId::new(device).unwrap(),
            class: DeviceClass::InfusionPump,
            patient: PatientId::new(patient).unwrap(),
            sequence: 1,
            bytes: 100,
            readings: vec![Reading {
                quantity: Quantity::InfusionRate,
                value: Phi::new(value),
                time: at(secs),
            }],
            stored: 1,
            duplicates: 0,
        }
    }

    fn rules(text: &str) -> RuleSet {
        RuleSet::parse(text).unwrap()
    }

    fn detector(text: &str) -> (RulesHandle, RulesDetector) {
        let handle = RulesHandle::new(rules(text));
        let detector = RulesDetector::new(handle.clone());
        (handle, detector)
    }

    /// The ids of the rules that fired at each event.
    fn run(detector: &mut RulesDetector, events: &[Event]) -> Vec<Vec<String>> {
        events
            .iter()
            .map(|event| {
                let mut alerts = Vec::new();
                detector.observe(event, &mut alerts);
                alerts
                    .iter()
                    .map(|a| match &a.evidence[0] {
                        Evidence::Fact { name, value } if name == "rule" => value.clone(),
                        other => panic!("first evidence is the rule: {other:?}"),
                    })
                    .collect()
            })
            .collect()
    }

    fn fired(detector: &mut RulesDetector, events: &[Event]) -> usize {
        run(detector, events).iter().map(Vec::len).sum()
    }

    const BURST: &str = r#"
        [[rule]]
        id = "cert-burst"
        description = "Refused certificates"
        severity = "high"
        event = "refused"
        count = 3
        within_seconds = 60
        per = "address"
    "#;

    #[test]
    fn the_documented_examples_catch_what_they_describe() {
        let (_, mut detector) = detector(include_str!("../../../../docs/examples/rules.toml"));
        let picu = |device: &str, value| rate(0, device, "p-1", value);
        assert_eq!(
            run(
                &mut detector,
                &[
                    picu("picu-pump-02", 260.0),
                    picu("picu-pump-02", 250.0),
                    picu("icu-pump-02", 400.0),
                ]
            ),
            [
                vec!["picu-pump-rate-above-limit".to_owned()],
                vec![],
                vec![]
            ]
        );
        let from_clinical_vlan: Vec<Event> =
            (0..10).map(|s| refused(s, "10.20.3.4", None)).collect();
        assert_eq!(fired(&mut detector, &from_clinical_vlan), 0);
        let from_outside: Vec<Event> = (0..5).map(|s| refused(s * 60, "10.30.3.4", None)).collect();
        assert_eq!(
            run(&mut detector, &from_outside).concat(),
            ["cert-burst-outside-clinical-vlan"]
        );
        let connected = |address: &str| Event::Connected {
            at: at(0),
            device: DeviceId::new("oxi-7").unwrap(),
            address: address.parse().unwrap(),
            took_over: None,
        };
        assert_eq!(
            run(
                &mut detector,
                &[
                    connected("172.16.40.2"),
                    connected("fd00:99::12"),
                    connected("10.20.1.1")
                ]
            )
            .iter()
            .map(Vec::len)
            .collect::<Vec<_>>(),
            [1, 1, 0]
        );
    }

    #[test]
    fn a_rule_without_threshold_fires_at_every_match_with_its_severity_and_technique() {
        let (_, mut detector) = detector(
            r#"
            [[rule]]
            id = "pump-rate"
            description = "Rate above the ward limit"
            severity = "critical"
            technique = "T0836"
            event = "stored"
            quantity = "infusion_rate"
            above = 500
            unit = "mL/h"
            "#,
        );
        let mut alerts = Vec::new();
        detector.observe(&rate(0, "pump-1", "p-1", 400.0), &mut alerts);
        assert!(alerts.is_empty());
        detector.observe(&rate(1, "pump-1", "p-1", 600.0), &mut alerts);
        detector.observe(&rate(2, "pump-1", "p-1", 601.0), &mut alerts);
        assert_eq!(alerts.len(), 2);
        let alert = &alerts[0];
        assert_eq!(alert.kind, AlertKind::Rule);
        assert_eq!(alert.severity, Severity::Critical);
        assert_eq!(alert.attack_technique.as_deref(), Some("T0836"));
        assert_eq!(alert.device, DeviceId::new("pump-1").ok());
        assert_eq!(alert.patient, PatientId::new("p-1").ok());
        assert_eq!(alert.time, at(1));
        assert!(alert.evidence.contains(&Evidence::Clinical {
            quantity: Quantity::InfusionRate,
            value: Phi::new(600.0)
        }));
        for evidence in &alert.evidence {
            if let Evidence::Fact { value, .. } = evidence {
                assert!(
                    !value.contains("600"),
                    "a clinical value in a fact: {value}"
                );
            }
        }
    }

    #[test]
    fn a_threshold_fires_when_the_count_is_reached_within_the_window_then_restarts() {
        let (_, mut detector) = detector(BURST);
        let events: Vec<Event> = [0, 10, 20, 30, 40, 50]
            .iter()
            .map(|s| refused(*s, "203.0.113.9", None))
            .collect();
        let fired: Vec<usize> = run(&mut detector, &events).iter().map(Vec::len).collect();
        assert_eq!(
            fired,
            [0, 0, 1, 0, 0, 1],
            "fires at the 3rd, counts again from 0"
        );
    }

    #[test]
    fn events_older_than_the_window_do_not_count() {
        let (_, mut detector) = detector(BURST);
        let events: Vec<Event> = [0, 40, 61, 100]
            .iter()
            .map(|s| refused(*s, "203.0.113.9", None))
            .collect();
        assert_eq!(
            fired(&mut detector, &events),
            0,
            "never 3 within 60 s: 0 and 40, then 40 and 61, then 61 and 100"
        );
        // 100, 101: with 61 that makes three within 60 s.
        assert_eq!(
            fired(&mut detector, &[refused(101, "203.0.113.9", None)]),
            1
        );
    }

    #[test]
    fn the_window_is_exclusive_at_its_length() {
        let (_, mut detector) = detector(BURST);
        let events: Vec<Event> = [0, 30, 60]
            .iter()
            .map(|s| refused(*s, "203.0.113.9", None))
            .collect();
        assert_eq!(fired(&mut detector, &events), 0, "0 and 60 are 60 s apart");
    }

    #[test]
    fn groups_count_separately() {
        let (_, mut detector) = detector(BURST);
        let events: Vec<Event> = (0..6)
            .map(|i| {
                let address = if i % 2 == 0 {
                    "203.0.113.9"
                } else {
                    "203.0.113.10"
                };
                refused(i, address, None)
            })
            .collect();
        let fired: Vec<usize> = run(&mut detector, &events).iter().map(Vec::len).collect();
        assert_eq!(fired, [0, 0, 0, 0, 1, 1], "three from each address");
    }

    #[test]
    fn an_ipv4_address_through_a_dual_stack_listener_is_one_group() {
        let (_, mut detector) = detector(BURST);
        let events = [
            refused(0, "203.0.113.9", None),
            refused(1, "::ffff:203.0.113.9", None),
            refused(2, "203.0.113.9", None),
        ];
        assert_eq!(fired(&mut detector, &events), 1);
    }

    #[test]
    fn grouping_per_device_patient_and_all() {
        let rule = |per: &str| {
            format!(
                r#"
                [[rule]]
                id = "fast-{per}"
                description = "Three fast rates"
                severity = "medium"
                event = "stored"
                quantity = "infusion_rate"
                above = 500
                unit = "mL/h"
                count = 3
                within_seconds = 600
                per = "{per}"
                "#
            )
        };
        let text = [rule("device"), rule("patient"), rule("all")].concat();
        let (_, mut detector) = detector(&text);
        // Two pumps on one patient, and a third pump on another patient.
        let events = [
            rate(0, "pump-1", "p-1", 600.0),
            rate(1, "pump-2", "p-1", 600.0),
            rate(2, "pump-3", "p-2", 600.0),
            rate(3, "pump-1", "p-1", 600.0),
            rate(4, "pump-1", "p-1", 600.0),
        ];
        assert_eq!(
            run(&mut detector, &events),
            [
                vec![],
                vec![],
                vec!["fast-all".to_owned()],
                vec!["fast-patient".to_owned()],
                vec!["fast-device".to_owned()],
            ]
        );
    }

    #[test]
    fn events_without_the_grouping_key_are_not_counted() {
        let (_, mut detector) = detector(
            r#"
            [[rule]]
            id = "per-device"
            description = "Refusals of one device"
            severity = "low"
            event = "refused"
            count = 2
            within_seconds = 60
            per = "device"
            "#,
        );
        let anonymous: Vec<Event> = (0..5).map(|i| refused(i, "10.0.0.1", None)).collect();
        assert_eq!(fired(&mut detector, &anonymous), 0);
        let known: Vec<Event> = (0..2)
            .map(|i| refused(i, "10.0.0.1", Some("mon-1")))
            .collect();
        assert_eq!(fired(&mut detector, &known), 1);
    }

    #[test]
    fn threshold_alerts_carry_the_counts() {
        let (_, mut detector) = detector(BURST);
        let mut alerts = Vec::new();
        for i in 0..3 {
            detector.observe(&refused(i, "203.0.113.9", Some("mon-1")), &mut alerts);
        }
        assert_eq!(alerts.len(), 1);
        let fact = |name: &str| {
            alerts[0].evidence.iter().find_map(|e| match e {
                Evidence::Fact { name: n, value } if n == name => Some(value.clone()),
                _ => None,
            })
        };
        assert_eq!(fact("rule").as_deref(), Some("cert-burst"));
        assert_eq!(fact("count").as_deref(), Some("3"));
        assert_eq!(fact("within_seconds").as_deref(), Some("60"));
        assert_eq!(fact("per").as_deref(), Some("address"));
        assert_eq!(fact("address").as_deref(), Some("203.0.113.9"));
        assert_eq!(fact("refused").as_deref(), Some("bad_certificate"));
        assert_eq!(alerts[0].device, DeviceId::new("mon-1").ok());
        assert_eq!(alerts[0].patient, None);
    }

    #[test]
    fn a_disabled_rule_never_fires() {
        let (_, mut detector) = detector(
            r#"
            [[rule]]
            id = "off"
            description = "Off"
            severity = "low"
            event = "flooding"
            enabled = false
            "#,
        );
        let flood = Event::Flooding {
            at: at(0),
            device: DeviceId::new("m-1").unwrap(),
            over_for_ms: 2000,
        };
        assert_eq!(fired(&mut detector, &[flood]), 0);
    }

    #[test]
    fn state_is_bounded_the_stalest_group_is_forgotten_first() {
        let mut window = Window::default();
        let threshold = Threshold {
            count: 2,
            within_seconds: 3600,
            per: Per::Address,
        };
        let address = |i: usize| Group::Address(IpAddr::from([10, 0, (i / 256) as u8, i as u8]));
        for i in 0..MAX_GROUPS {
            assert!(!window.count(address(i), T0 + i as i64, threshold));
        }
        assert_eq!(window.groups.len(), MAX_GROUPS);
        // Groups 0 to 127 are the stalest eighth; a new address pushes them out.
        assert!(!window.count(address(MAX_GROUPS), T0 + 5000, threshold));
        assert_eq!(window.groups.len(), MAX_GROUPS - MAX_GROUPS / 8 + 1);
        assert!(!window.groups.contains_key(&address(MAX_GROUPS / 8 - 1)));
        assert!(window.groups.contains_key(&address(MAX_GROUPS / 8)));
        // So address 0 starts again from one, while address 200 still has its count.
        assert!(!window.count(address(0), T0 + 5001, threshold));
        assert!(window.count(address(200), T0 + 5002, threshold));
    }

    #[test]
    fn groups_quiet_for_a_window_are_forgotten_before_live_ones() {
        let mut window = Window::default();
        let threshold = Threshold {
            count: 2,
            within_seconds: 60,
            per: Per::Address,
        };
        let address = |i: usize| Group::Address(IpAddr::from([10, 1, (i / 256) as u8, i as u8]));
        for i in 0..MAX_GROUPS {
            window.count(address(i), T0, threshold);
        }
        // 2 minutes later everything is stale: all are forgotten at once.
        window.count(address(MAX_GROUPS), T0 + 120_000, threshold);
        assert_eq!(window.groups.len(), 1);
    }

    #[test]
    fn a_scan_from_many_addresses_keeps_memory_bounded() {
        let (_, mut detector) = detector(BURST);
        for i in 0..(3 * MAX_GROUPS as u32 + 17) {
            let address = IpAddr::from((0xCB00_0000_u32 + i).to_be_bytes()).to_string();
            detector.observe(&refused(i64::from(i % 50), &address, None), &mut Vec::new());
        }
        let sizes: Vec<usize> = detector
            .windows
            .iter()
            .flatten()
            .map(|w| w.groups.len())
            .collect();
        assert_eq!(sizes.len(), 1);
        assert!((MAX_GROUPS - MAX_GROUPS / 8..=MAX_GROUPS).contains(&sizes[0]));
    }

    #[test]
    fn a_new_rule_applies_after_reload_and_a_removed_one_stops() {
        let (handle, mut detector) = detector(BURST);
        let flood = |secs| Event::Flooding {
            at: at(secs),
            device: DeviceId::new("m-1").unwrap(),
            over_for_ms: 2000,
        };
        assert_eq!(fired(&mut detector, &[flood(0)]), 0);
        let generation = handle.replace(rules(
            r#"
            [[rule]]
            id = "any-flood"
            description = "Any flood"
            severity = "high"
            event = "flooding"
            "#,
        ));
        assert_eq!(generation, 1);
        assert_eq!(handle.generation(), 1);
        assert_eq!(detector.generation(), 0, "not until the next event");
        assert_eq!(
            run(&mut detector, &[flood(1)]),
            [vec!["any-flood".to_owned()]]
        );
        assert_eq!(detector.generation(), 1);
        let burst: Vec<Event> = (2..8).map(|s| refused(s, "203.0.113.9", None)).collect();
        assert_eq!(fired(&mut detector, &burst), 0, "cert-burst was removed");
    }

    #[test]
    fn an_unchanged_rule_keeps_its_counts_across_a_reload_a_changed_one_starts_again() {
        let other = r#"
            [[rule]]
            id = "other-burst"
            description = "Refused certificates, counted per address"
            severity = "low"
            event = "refused"
            count = 3
            within_seconds = 60
            per = "address"
        "#;
        let (handle, mut detector) = detector(&[BURST, other].concat());
        let events: Vec<Event> = (0..2).map(|s| refused(s, "203.0.113.9", None)).collect();
        assert_eq!(fired(&mut detector, &events), 0, "two of three each");

        // cert-burst: only its severity and description change, which do not change what it
        // counts. other-burst: its window changes.
        let reworded = BURST
            .replace("severity = \"high\"", "severity = \"critical\"")
            .replace("Refused certificates", "Refused client certificates");
        let rewindowed = other.replace("within_seconds = 60", "within_seconds = 61");
        handle.replace(rules(&[reworded.as_str(), &rewindowed].concat()));

        let mut alerts = Vec::new();
        detector.observe(&refused(2, "203.0.113.9", None), &mut alerts);
        assert_eq!(alerts.len(), 1, "only the unchanged rule had two already");
        assert_eq!(
            alerts[0].severity,
            Severity::Critical,
            "with its new severity"
        );
        assert_eq!(
            run(
                &mut detector,
                &[
                    refused(3, "203.0.113.9", None),
                    refused(4, "203.0.113.9", None)
                ]
            ),
            [vec![], vec!["other-burst".to_owned()]],
            "the changed rule counted from its reload"
        );
    }

    #[test]
    fn disabling_and_enabling_a_rule_starts_its_count_again() {
        let (handle, mut detector) = detector(BURST);
        let events: Vec<Event> = (0..2).map(|s| refused(s, "203.0.113.9", None)).collect();
        fired(&mut detector, &events);
        handle.replace(rules(&BURST.replace("event =", "enabled = false\nevent =")));
        assert_eq!(fired(&mut detector, &[refused(2, "203.0.113.9", None)]), 0);
        handle.replace(rules(BURST));
        assert_eq!(fired(&mut detector, &[refused(3, "203.0.113.9", None)]), 0);
    }

    #[test]
    fn a_reload_from_another_thread_is_seen_at_the_next_event() {
        let (handle, mut detector) = detector("");
        let hub = handle.clone();
        std::thread::spawn(move || {
            hub.replace(rules(
                r#"
                [[rule]]
                id = "late"
                description = "Added while running"
                severity = "info"
                event = "refused"
                "#,
            ))
        })
        .join()
        .unwrap();
        assert_eq!(fired(&mut detector, &[refused(0, "10.0.0.1", None)]), 1);
        assert_eq!(handle.rules().len(), 1);
    }
}
