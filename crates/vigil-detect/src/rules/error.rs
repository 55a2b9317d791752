//! Why a rules file was refused.
//!
//! Every problem names where it is (line and column), which rule (its id, or its position when
//! the id itself is the problem) and which key, and says what is allowed. None carries a value
//! from the file: the only text of the file an error may show is a key's name.

use std::fmt;

use vigil_model::{IdError, Quantity};

use super::{CidrError, EventKind, Per};

/// A place in the rules file. Both start at 1; the column counts characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// The line.
    pub line: u32,
    /// The column.
    pub column: u32,
}

impl Position {
    /// The position of byte `offset` in `text`.
    pub(crate) fn of(text: &[u8], offset: usize) -> Position {
        Lines::new(text).position(offset)
    }
}

/// Where each line of a text starts, so that a file's many problems each find their position
/// without scanning the file again.
pub(crate) struct Lines<'t> {
    text: &'t [u8],
    /// Byte offsets of the lines' starts; the first is 0.
    starts: Vec<usize>,
}

impl<'t> Lines<'t> {
    pub(crate) fn new(text: &'t [u8]) -> Lines<'t> {
        let starts = std::iter::once(0)
            .chain(
                text.iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        Lines { text, starts }
    }

    /// The position of byte `offset` (the end of the text, if it is past it).
    pub(crate) fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|start| *start <= offset);
        let start = self.starts.get(line.wrapping_sub(1)).copied().unwrap_or(0);
        // Count characters, not bytes, so that the column is where an editor puts the cursor;
        // continuation bytes of UTF-8 are the ones that do not start a character.
        let column = self
            .text
            .get(start..offset)
            .unwrap_or_default()
            .iter()
            .filter(|b| (**b & 0xC0) != 0x80)
            .count()
            + 1;
        Position {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// The rule a problem is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleRef {
    /// By its id, when the id is valid.
    Id(String),
    /// By its position among the file's `[[rule]]` tables, from 1, when the id is missing or
    /// invalid.
    Number(usize),
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleRef::Id(id) => write!(f, "rule `{id}`"),
            RuleRef::Number(n) => write!(f, "rule #{n}"),
        }
    }
}

/// What is wrong.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// `rule` is not written as `[[rule]]` tables.
    NotRuleTables,
    /// A key the format does not have (often a typo).
    UnknownKey {
        /// The closest known key, if one is close.
        suggestion: Option<&'static str>,
    },
    /// A required key is missing.
    Missing {
        /// The key it goes with, when it is required only with another one.
        with: Option<&'static str>,
    },
    /// The value has the wrong TOML type.
    WrongType {
        /// What it must be.
        expected: &'static str,
    },
    /// A name that is not one the key allows (severity, event, device class, …).
    UnknownName {
        /// The names allowed.
        allowed: String,
        /// The closest allowed name, if one is close.
        suggestion: Option<String>,
    },
    /// A rule id that is not a slug.
    BadId,
    /// Two rules with the same id.
    DuplicateId {
        /// Where the first one is.
        first: Position,
    },
    /// A description that is empty, too long or on more than one line.
    BadDescription,
    /// A technique that is not a MITRE ATT&CK for ICS id.
    BadTechnique,
    /// An item of `devices` that is not a device id.
    BadDeviceId {
        /// Its position in the list, from 1.
        item: usize,
        /// Why.
        error: IdError,
    },
    /// An item of `addresses` or `not_addresses` that is not an address range.
    BadAddress {
        /// Its position in the list, from 1.
        item: usize,
        /// Why.
        error: CidrError,
    },
    /// An empty list, which would match nothing.
    EmptyList,
    /// A list longer than [`super::MAX_LIST_ITEMS`].
    TooManyItems {
        /// The most allowed.
        max: usize,
    },
    /// A condition or grouping that the rule's event does not carry.
    NotForEvent {
        /// The rule's event.
        event: EventKind,
        /// The events it applies to.
        applies_to: &'static [EventKind],
    },
    /// A grouping that the rule's event does not carry.
    PerNotForEvent {
        /// The grouping.
        per: Per,
        /// The rule's event.
        event: EventKind,
        /// The events it applies to.
        applies_to: &'static [EventKind],
    },
    /// A key that needs another one.
    Requires {
        /// What it needs, e.g. "`above` or `below`".
        needs: &'static str,
    },
    /// A unit that is not accepted for the rule's quantity.
    UnitNotAccepted {
        /// The quantity.
        quantity: Quantity,
        /// The accepted UCUM codes, comma separated.
        accepted: String,
    },
    /// A number that is not finite.
    NotFinite,
    /// `above` not greater than `below`, which would match every reading.
    AboveNotOverBelow,
    /// A whole number outside its range.
    OutOfRange {
        /// The smallest allowed.
        min: u32,
        /// The largest allowed.
        max: u32,
    },
    /// More than [`super::MAX_RULES`] rules.
    TooManyRules {
        /// The most allowed.
        max: usize,
    },
    /// Thresholds that could keep more than [`super::MAX_STATE_BYTES`] in memory.
    StateTooLarge {
        /// What they could keep, bytes.
        bytes: usize,
        /// The most allowed.
        max: usize,
    },
}

/// One problem in a rules file.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Where, when it is at a place in the file.
    pub position: Option<Position>,
    /// In which rule, when it is in one.
    pub rule: Option<RuleRef>,
    /// The key concerned, when there is one.
    pub key: Option<String>,
    /// What is wrong.
    pub kind: ProblemKind,
}

fn names(events: &[EventKind]) -> String {
    events
        .iter()
        .map(|e| format!("\"{}\"", e.as_str()))
        .collect::<Vec<_>>()
        .join(" or ")
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(position) = self.position {
            write!(f, "{position}: ")?;
        }
        if let Some(rule) = &self.rule {
            write!(f, "{rule}: ")?;
        }
        let key = self.key.as_deref().unwrap_or("rule");
        match &self.kind {
            ProblemKind::NotRuleTables => {
                f.write_str("`rule` must be written as tables: [[rule]] (one per rule)")
            }
            ProblemKind::UnknownKey { suggestion } => {
                write!(f, "unknown key `{key}`")?;
                match suggestion {
                    Some(s) => write!(f, "; did you mean `{s}`?"),
                    None => f.write_str("; docs/rules.md lists the keys"),
                }
            }
            ProblemKind::Missing { with: None } => write!(f, "`{key}` is required"),
            ProblemKind::Missing { with: Some(other) } => {
                write!(f, "`{key}` is required with `{other}`")
            }
            ProblemKind::WrongType { expected } => write!(f, "`{key}` must be {expected}"),
            ProblemKind::UnknownName {
                allowed,
                suggestion,
            } => {
                write!(f, "`{key}` is not one of: {allowed}")?;
                match suggestion {
                    Some(s) => write!(f, "; did you mean `{s}`?"),
                    None => Ok(()),
                }
            }
            ProblemKind::BadId => write!(
                f,
                "`{key}` must be 1 to {} characters from a-z 0-9 - _, starting with a letter \
                 or a digit (e.g. pump-rate-above-limit)",
                super::MAX_ID_LEN
            ),
            ProblemKind::DuplicateId { first } => {
                write!(f, "`{key}` is already used by the rule at {first}")
            }
            ProblemKind::BadDescription => write!(
                f,
                "`{key}` must be 1 to {} characters on one line",
                super::MAX_DESCRIPTION_CHARS
            ),
            ProblemKind::BadTechnique => write!(
                f,
                "`{key}` must be a MITRE ATT&CK for ICS technique id: T0 and three digits \
                 (e.g. T0836)"
            ),
            ProblemKind::BadDeviceId { item, error } => {
                write!(f, "`{key}` item {item}: {error}")
            }
            ProblemKind::BadAddress { item, error } => write!(f, "`{key}` item {item} {error}"),
            ProblemKind::EmptyList => write!(
                f,
                "`{key}` is empty and would match nothing; leave it out to match any"
            ),
            ProblemKind::TooManyItems { max } => {
                write!(f, "`{key}` has more than {max} items")
            }
            ProblemKind::NotForEvent { event, applies_to } => write!(
                f,
                "`{key}` applies only to event = {}, not to event = \"{}\"",
                names(applies_to),
                event.as_str()
            ),
            ProblemKind::PerNotForEvent {
                per,
                event,
                applies_to,
            } => write!(
                f,
                "`{key} = \"{}\"` applies only to event = {}, not to event = \"{}\"",
                per.as_str(),
                names(applies_to),
                event.as_str()
            ),
            ProblemKind::Requires { needs } => write!(f, "`{key}` needs {needs}"),
            ProblemKind::UnitNotAccepted { quantity, accepted } => write!(
                f,
                "`{key}` is not a unit accepted for {quantity}; accepted (UCUM): {accepted}"
            ),
            ProblemKind::NotFinite => write!(f, "`{key}` must be a finite number"),
            ProblemKind::AboveNotOverBelow => f.write_str(
                "`above` must be greater than `below`: a reading matches when it is above \
                 `above` or below `below`, so otherwise every reading would match",
            ),
            ProblemKind::OutOfRange { min, max } => {
                write!(f, "`{key}` must be a whole number from {min} to {max}")
            }
            ProblemKind::TooManyRules { max } => {
                write!(
                    f,
                    "more than {max} rules; split the file or remove unused rules"
                )
            }
            ProblemKind::StateTooLarge { bytes, max } => write!(
                f,
                "the thresholds could keep {} MiB of counts in memory, more than the {} MiB \
                 allowed; lower `count`, or count fewer rules per device, patient or address",
                bytes.div_ceil(1024 * 1024),
                max / (1024 * 1024)
            ),
        }
    }
}

/// Why a rules file was refused.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RulesError {
    /// Larger than [`super::MAX_FILE_BYTES`].
    TooLarge {
        /// Its size.
        bytes: usize,
    },
    /// Not UTF-8 text.
    NotUtf8 {
        /// Where the first byte that is not is.
        position: Position,
    },
    /// Not valid TOML.
    Syntax {
        /// Where, when the parser knows.
        position: Option<Position>,
        /// The parser's description, which quotes no part of the file.
        message: String,
    },
    /// Valid TOML that is not a valid rules file.
    Invalid {
        /// The problems, in file order, at most [`super::MAX_PROBLEMS`].
        problems: Vec<Problem>,
        /// Problems found beyond those.
        omitted: usize,
    },
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RulesError::TooLarge { bytes } => write!(
                f,
                "the rules file is {bytes} bytes; at most {} are allowed",
                super::MAX_FILE_BYTES
            ),
            RulesError::NotUtf8 { position } => {
                write!(f, "{position}: the rules file is not UTF-8 text")
            }
            RulesError::Syntax {
                position: Some(position),
                message,
            } => write!(f, "{position}: not valid TOML: {message}"),
            RulesError::Syntax {
                position: None,
                message,
            } => write!(f, "not valid TOML: {message}"),
            RulesError::Invalid { problems, omitted } => {
                let total = problems.len() + omitted;
                write!(
                    f,
                    "the rules file has {total} problem{}:",
                    if total == 1 { "" } else { "s" }
                )?;
                for problem in problems {
                    write!(f, "\n  {problem}")?;
                }
                if *omitted > 0 {
                    write!(f, "\n  … and {omitted} more")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for RulesError {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters_from_one() {
        let text = "a = 1\nbé = 2\n".as_bytes();
        assert_eq!(Position::of(text, 0), Position { line: 1, column: 1 });
        assert_eq!(Position::of(text, 6), Position { line: 2, column: 1 });
        // "bé " is 4 bytes and 3 characters.
        assert_eq!(Position::of(text, 10), Position { line: 2, column: 4 });
        assert_eq!(
            Position::of(text, 999),
            Position { line: 3, column: 1 },
            "past the end: the end"
        );
    }

    #[test]
    fn invalid_lists_every_problem_and_counts_the_omitted() {
        let problem = Problem {
            position: Some(Position { line: 3, column: 1 }),
            rule: Some(RuleRef::Number(2)),
            key: Some("id".into()),
            kind: ProblemKind::Missing { with: None },
        };
        let error = RulesError::Invalid {
            problems: vec![problem.clone(), problem],
            omitted: 5,
        };
        assert_eq!(
            error.to_string(),
            "the rules file has 7 problems:\n  line 3, column 1: rule #2: `id` is required\n  \
             line 3, column 1: rule #2: `id` is required\n  … and 5 more"
        );
    }
}
