//! A `searchset` Bundle, streamed into bytes.
//!
//! ```text
//! {"resourceType":"Bundle","type":"searchset","entry":[…],"total":N,"link":[…]}
//! ```
//!
//! Entries come first and `total`/`link` last, so a handler can write rows as the store yields
//! them and decide the `next` link (keyset paging: is there a row after the last one served?)
//! only at the end. JSON objects are unordered (RFC 8259 § 4) and FHIR's JSON format accepts
//! any property order. An empty searchset has no `entry` at all: FHIR JSON forbids empty
//! arrays. [`SearchsetWriter::take_bytes`] hands out what is written so far, for a chunked
//! response body.

use serde_json::Value;
use vigil_model::Observation;

use crate::json::{write_str, write_u64};
use crate::observation::write_observation;
use crate::{FhirError, ResourceType, fhir_id};

/// The paging links of a searchset, as absolute URLs the handler builds (see
/// [`crate::Search::link_query`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Links<'a> {
    /// This page.
    pub self_url: &'a str,
    /// The page after this one, if there is one.
    pub next: Option<&'a str>,
    /// The page before this one, if the handler offers one.
    pub previous: Option<&'a str>,
}

/// Writes a `searchset` Bundle entry by entry.
#[derive(Debug)]
pub struct SearchsetWriter {
    out: Vec<u8>,
    /// `"<base>/` as JSON, without the closing quote: every fullUrl starts with it.
    url_prefix: Vec<u8>,
    entries: u64,
}

impl SearchsetWriter {
    /// Starts a Bundle. `base` is the FHIR base URL (e.g. `https://hub.example/fhir/r4`), from
    /// which each entry's `fullUrl` is built.
    pub fn new(base: &str) -> Self {
        Self::with_capacity(base, 4096)
    }

    /// Starts a Bundle with room for `bytes` (about 800 per Observation entry).
    pub fn with_capacity(base: &str, bytes: usize) -> Self {
        let mut out = Vec::with_capacity(bytes.max(64));
        out.extend_from_slice(b"{\"resourceType\":\"Bundle\",\"type\":\"searchset\"");
        let mut url_prefix = Vec::with_capacity(base.len() + 4);
        write_str(&mut url_prefix, base.trim_end_matches('/'));
        url_prefix.pop();
        url_prefix.push(b'/');
        Self {
            out,
            url_prefix,
            entries: 0,
        }
    }

    /// How many entries are written.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Appends an Observation entry; `id` is the resource id for the row. On error nothing is
    /// appended and the Bundle stays well-formed.
    pub fn push_observation(
        &mut self,
        id: &str,
        observation: &Observation,
    ) -> Result<(), FhirError> {
        let start = self.out.len();
        let result = self
            .entry_head("Observation", id)
            .and_then(|()| write_observation(&mut self.out, id, observation));
        self.entry_end(start, result)
    }

    /// Appends any resource this crate built (it must have `resourceType` and `id`).
    pub fn push_resource(&mut self, resource: &Value) -> Result<(), FhirError> {
        let kind = resource["resourceType"]
            .as_str()
            .and_then(ResourceType::from_name)
            .ok_or(FhirError::Internal)?
            .name();
        let id = resource["id"].as_str().ok_or(FhirError::Internal)?;
        let start = self.out.len();
        let result = self.entry_head(kind, id).and_then(|()| {
            serde_json::to_writer(&mut self.out, resource).map_err(|_| FhirError::Internal)
        });
        self.entry_end(start, result)
    }

    fn entry_head(&mut self, kind: &str, id: &str) -> Result<(), FhirError> {
        let id = fhir_id(id, "resource id")?;
        let out = &mut self.out;
        out.extend_from_slice(if self.entries == 0 {
            b",\"entry\":[{\"fullUrl\":"
        } else {
            b",{\"fullUrl\":"
        });
        // base/kind/id as one JSON string; kind and id are FHIR names and ids, which need no
        // escaping.
        out.extend_from_slice(&self.url_prefix);
        out.extend_from_slice(kind.as_bytes());
        out.push(b'/');
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"\",\"resource\":");
        Ok(())
    }

    fn entry_end(&mut self, start: usize, result: Result<(), FhirError>) -> Result<(), FhirError> {
        match result {
            Ok(()) => {
                self.out
                    .extend_from_slice(b",\"search\":{\"mode\":\"match\"}}");
                self.entries += 1;
                Ok(())
            }
            Err(e) => {
                self.out.truncate(start);
                Err(e)
            }
        }
    }

    /// How many bytes are written and not yet taken.
    pub fn buffered(&self) -> usize {
        self.out.len()
    }

    /// Takes the bytes written so far, for streaming; the next bytes continue where these end.
    pub fn take_bytes(&mut self) -> Vec<u8> {
        let capacity = self.out.capacity();
        std::mem::replace(&mut self.out, Vec::with_capacity(capacity))
    }

    /// Closes the Bundle with `total` (the number of matches across all pages, if the handler
    /// knows it) and the links, and returns the remaining bytes.
    pub fn finish(mut self, total: Option<u64>, links: &Links<'_>) -> Vec<u8> {
        let out = &mut self.out;
        if self.entries > 0 {
            out.push(b']');
        }
        if let Some(total) = total {
            out.extend_from_slice(b",\"total\":");
            write_u64(out, total);
        }
        out.extend_from_slice(b",\"link\":[");
        let mut link = |relation: &str, url: &str, first: bool| {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"relation\":\"");
            out.extend_from_slice(relation.as_bytes());
            out.extend_from_slice(b"\",\"url\":");
            write_str(out, url);
            out.push(b'}');
        };
        link("self", links.self_url, true);
        if let Some(next) = links.next {
            link("next", next, false);
        }
        if let Some(previous) = links.previous {
            link("previous", previous, false);
        }
        out.extend_from_slice(b"]}");
        self.out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::patient::{PatientFacts, patient};
    use serde_json::json;
    use vigil_model::{DeviceId, PatientId, Phi, Quantity, Timestamp};

    fn obs(value: f64) -> Observation {
        Observation {
            device: DeviceId::new("oxi-1").unwrap(),
            patient: Some(PatientId::new("p-1").unwrap()),
            quantity: Quantity::Spo2,
            value: Phi::new(value),
            time: Timestamp::from_unix_millis(1_764_403_200_000).unwrap(),
            sequence: 1,
            implausible: false,
        }
    }

    const SELF: &str = "https://hub/fhir/r4/Observation?patient=p-1";

    #[test]
    fn an_empty_searchset_has_no_entry_array() {
        let bytes = SearchsetWriter::new("https://hub/fhir/r4/").finish(
            Some(0),
            &Links {
                self_url: SELF,
                ..Links::default()
            },
        );
        let bundle: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            bundle,
            json!({
                "resourceType": "Bundle",
                "type": "searchset",
                "total": 0,
                "link": [{"relation": "self", "url": SELF}]
            })
        );
    }

    #[test]
    fn entries_have_full_urls_and_match_mode_and_links_close_the_bundle() {
        let mut writer = SearchsetWriter::new("https://hub/fhir/r4");
        writer.push_observation("o-1", &obs(97.0)).unwrap();
        writer.push_observation("o-2", &obs(96.0)).unwrap();
        let p = patient(&PatientFacts {
            id: &PatientId::new("p-1").unwrap(),
            mrn_system: "urn:oid:1.2.3",
            mrn: None,
            name: None,
            birth_date: None,
        })
        .unwrap();
        writer.push_resource(&p).unwrap();
        assert_eq!(writer.entries(), 3);
        let bytes = writer.finish(
            None,
            &Links {
                self_url: SELF,
                next: Some("https://hub/fhir/r4/Observation?patient=p-1&_cursor=x"),
                previous: None,
            },
        );
        let bundle: Value = serde_json::from_slice(&bytes).unwrap();
        let entries = bundle["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0]["fullUrl"], "https://hub/fhir/r4/Observation/o-1");
        assert_eq!(entries[1]["resource"]["valueQuantity"]["value"], 96.0);
        assert_eq!(entries[2]["fullUrl"], "https://hub/fhir/r4/Patient/p-1");
        assert!(entries.iter().all(|e| e["search"]["mode"] == "match"));
        assert!(bundle.get("total").is_none());
        assert_eq!(bundle["link"][1]["relation"], "next");
    }

    #[test]
    fn a_refused_entry_leaves_the_bundle_well_formed() {
        let mut writer = SearchsetWriter::new("https://hub/fhir/r4");
        assert!(writer.push_observation("bad id", &obs(97.0)).is_err());
        writer.push_observation("o-1", &obs(97.0)).unwrap();
        assert!(writer.push_observation("o-2", &obs(f64::INFINITY)).is_err());
        assert!(writer.push_resource(&json!({"no": "type"})).is_err());
        let bytes = writer.finish(Some(1), &Links::default());
        let bundle: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(bundle["entry"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn streamed_chunks_concatenate_to_the_whole_bundle() {
        let mut writer = SearchsetWriter::new("https://hub/fhir/r4");
        let mut body = Vec::new();
        for i in 0..5 {
            writer
                .push_observation(&format!("o-{i}"), &obs(90.0 + f64::from(i)))
                .unwrap();
            body.extend(writer.take_bytes());
        }
        body.extend(writer.finish(Some(5), &Links::default()));
        let bundle: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(bundle["entry"].as_array().unwrap().len(), 5);
        assert_eq!(bundle["total"], 5);
    }
}
