//! Detection rules a security officer writes, without recompiling Vigil (issue #7).
//!
//! A rules file is TOML: one `[[rule]]` table per rule, documented with worked examples in
//! `docs/rules.md`. [`RuleSet::parse`] validates a whole file strictly and reports every problem
//! it finds with its line, column, rule and key, never the text that was written (a mistyped
//! value could be PHI). [`RulesDetector`] runs the rules as a [`crate::Detector`]; the hub
//! swaps in a new file's rules through a [`RulesHandle`] while it runs, and the detector picks
//! them up at its next event, keeping the counts of every rule whose matching did not change.
//!
//! A rule matches one kind of event, optionally narrowed by conditions (all must hold; a list
//! holds when any of its items does), and fires either at every match or, with a threshold,
//! when `count` matches fall within `within_seconds` for one device, patient, address or for
//! all together. What a threshold remembers is bounded: see [`MAX_GROUPS`] and
//! [`MAX_STATE_BYTES`].

mod cidr;
mod detector;
mod error;
mod matcher;
mod parse;

use vigil_model::Severity;

pub use cidr::{Cidr, CidrError};
pub use detector::{RulesDetector, RulesHandle};
pub use error::{Position, Problem, ProblemKind, RuleRef, RulesError};

use matcher::Matcher;

/// Largest rules file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Most rules in one file.
pub const MAX_RULES: usize = 1000;
/// Most items in one list (`devices`, `addresses`, …).
pub const MAX_LIST_ITEMS: usize = 1000;
/// Largest `count` of a threshold.
pub const MAX_COUNT: u32 = 1000;
/// Longest `within_seconds` of a threshold: 7 days.
pub const MAX_WITHIN_SECONDS: u32 = 7 * 24 * 3600;
/// Groups (devices, patients, addresses) one threshold rule keeps counts for; when a new one
/// arrives and the rule is full, groups whose events are all older than the window are
/// forgotten, then the group whose last event is the oldest.
pub const MAX_GROUPS: usize = 1024;
/// What the thresholds of one file may keep in memory, at most, in bytes; a file whose
/// thresholds could keep more is refused ([`ProblemKind::StateTooLarge`]). Each rule is
/// counted at its worst: [`MAX_GROUPS`] groups (one for `per = "all"`) of `count` event times.
pub const MAX_STATE_BYTES: usize = 64 * 1024 * 1024;
/// Most problems reported for one file; the rest are counted.
pub const MAX_PROBLEMS: usize = 100;
/// Longest rule id, in bytes.
pub const MAX_ID_LEN: usize = 64;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// The kind of event a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A pack of observations committed ([`crate::Event::Stored`]).
    Stored,
    /// A device connected ([`crate::Event::Connected`]).
    Connected,
    /// The hub refused something ([`crate::Event::Refused`]).
    Refused,
    /// A device cut off for its message rate ([`crate::Event::Flooding`]).
    Flooding,
}

impl EventKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: &'static [EventKind] = &[
        EventKind::Stored,
        EventKind::Connected,
        EventKind::Refused,
        EventKind::Flooding,
    ];

    /// Its name in a rules file.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Stored => "stored",
            EventKind::Connected => "connected",
            EventKind::Refused => "refused",
            EventKind::Flooding => "flooding",
        }
    }
}

/// What a threshold counts separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Per {
    /// Each device (events without one are not counted).
    Device,
    /// Each patient (stored packs only).
    Patient,
    /// Each source address (connections and refusals; events without one are not counted).
    Address,
    /// Every matching event together.
    All,
}

impl Per {
    /// Every grouping, in the order the documentation lists them.
    pub const ALL: &'static [Per] = &[Per::Device, Per::Patient, Per::Address, Per::All];

    /// Its name in a rules file.
    pub fn as_str(self) -> &'static str {
        match self {
            Per::Device => "device",
            Per::Patient => "patient",
            Per::Address => "address",
            Per::All => "all",
        }
    }
}

/// Fire when `count` matching events fall within `within_seconds`, counted per group; the
/// group's count then starts again from zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    /// Matching events that make the rule fire (2 to [`MAX_COUNT`]).
    pub count: u32,
    /// The window, seconds (1 to [`MAX_WITHIN_SECONDS`]).
    pub within_seconds: u32,
    /// What is counted separately.
    pub per: Per,
}

/// One validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    id: String,
    description: String,
    severity: Severity,
    technique: Option<String>,
    enabled: bool,
    matcher: Matcher,
    threshold: Option<Threshold>,
    line: u32,
}

impl Rule {
    /// Its unique id, a slug (`pump-rate-above-ward-limit`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What it detects, for people.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The severity of its alerts.
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// The MITRE ATT&CK for ICS technique of its alerts, e.g. `T0836`.
    pub fn technique(&self) -> Option<&str> {
        self.technique.as_deref()
    }

    /// Whether it runs (`enabled = false` keeps a rule in the file without running it).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The kind of event it matches.
    pub fn event(&self) -> EventKind {
        self.matcher.event
    }

    /// Its threshold, if it has one; without, it fires at every matching event.
    pub fn threshold(&self) -> Option<Threshold> {
        self.threshold
    }

    /// The line of the file its `[[rule]]` starts on.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// Whether `other` counts the same events the same way, so that a reload may keep this
    /// rule's counts for it. What only shapes the alert (description, severity, technique) does
    /// not matter.
    fn counts_like(&self, other: &Rule) -> bool {
        self.id == other.id
            && self.enabled == other.enabled
            && self.matcher == other.matcher
            && self.threshold == other.threshold
    }
}

/// A validated rules file.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// No rules.
    pub fn empty() -> RuleSet {
        RuleSet::default()
    }

    /// Parses and validates a rules file. Every problem is reported, up to [`MAX_PROBLEMS`].
    pub fn parse(text: &str) -> Result<RuleSet, RulesError> {
        parse::parse(text)
    }

    /// Like [`RuleSet::parse`], from the bytes of the file (which must be UTF-8).
    pub fn parse_bytes(bytes: &[u8]) -> Result<RuleSet, RulesError> {
        if bytes.len() > MAX_FILE_BYTES {
            return Err(RulesError::TooLarge { bytes: bytes.len() });
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => RuleSet::parse(text),
            Err(e) => Err(RulesError::NotUtf8 {
                position: Position::of(bytes, e.valid_up_to()),
            }),
        }
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// How many rules (enabled or not).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}
