//! `CapabilityStatement` for `GET /fhir/r4/metadata`.
//!
//! What the server does, written from the same table the search parser uses
//! ([`crate::search::PARAMETERS`]), so the statement cannot promise a parameter the parser
//! refuses. Security is SMART on FHIR (`restful-security-service`, FHIR R4); the SMART
//! endpoints go in the `oauth-uris` extension SMART App Launch 1.0 defines, when the hub has
//! them.

use serde_json::{Value, json};
use vigil_model::Timestamp;

use crate::json::write_instant;
use crate::search::{COMMON_PARAMETERS, parameters};
use crate::{FHIR_JSON, FHIR_VERSION, ResourceType, codes};

/// The SMART App Launch 1.0 `oauth-uris` extension.
pub const SMART_OAUTH_URIS: &str =
    "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris";

/// The OAuth 2.0 endpoints of the SMART authorisation server.
#[derive(Debug, Clone, Copy)]
pub struct SmartEndpoints<'a> {
    /// The authorisation endpoint.
    pub authorize: &'a str,
    /// The token endpoint.
    pub token: &'a str,
}

/// What the statement says about this server.
#[derive(Debug, Clone, Copy)]
pub struct CapabilityFacts<'a> {
    /// The FHIR base URL, e.g. `https://hub.example/fhir/r4`.
    pub base_url: &'a str,
    /// The software's version (`software.version`).
    pub version: &'a str,
    /// When the statement was last changed (`date`), e.g. the hub's start.
    pub date: Timestamp,
    /// The SMART endpoints, if the hub has an authorisation server.
    pub smart: Option<SmartEndpoints<'a>>,
}

/// The `CapabilityStatement`.
pub fn capability_statement(facts: &CapabilityFacts<'_>) -> Value {
    let mut date = Vec::with_capacity(26);
    write_instant(&mut date, facts.date);
    let date = String::from_utf8_lossy(&date).trim_matches('"').to_owned();

    let resources: Vec<Value> = ResourceType::ALL
        .iter()
        .map(|t| {
            let search_params: Vec<Value> = parameters(*t)
                .iter()
                .chain(COMMON_PARAMETERS)
                .map(|p| {
                    json!({"name": p.name, "type": p.kind.code(),
                           "documentation": p.documentation})
                })
                .collect();
            json!({
                "type": t.name(),
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": search_params,
            })
        })
        .collect();

    let mut security = json!({
        "cors": true,
        "service": [{"coding": [{
            "system": codes::RESTFUL_SECURITY_SERVICE,
            "code": "SMART-on-FHIR",
            "display": "SMART-on-FHIR"
        }]}],
        "description": "SMART on FHIR bearer tokens; every read is authorised per patient \
                        and written to Vigil's audit log",
    });
    if let Some(smart) = facts.smart {
        security["extension"] = json!([{
            "url": SMART_OAUTH_URIS,
            "extension": [
                {"url": "authorize", "valueUri": smart.authorize},
                {"url": "token", "valueUri": smart.token},
            ],
        }]);
    }

    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "Vigil",
        "kind": "instance",
        "software": {"name": "Vigil", "version": facts.version},
        "implementation": {
            "description": "Vigil hub FHIR API (read-only)",
            "url": facts.base_url,
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["json", FHIR_JSON],
        "rest": [{
            "mode": "server",
            "security": security,
            "resource": resources,
        }],
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::search;

    fn facts() -> CapabilityFacts<'static> {
        CapabilityFacts {
            base_url: "https://hub/fhir/r4",
            version: "0.1.0",
            date: Timestamp::from_unix_millis(1_764_403_200_000).unwrap(),
            smart: Some(SmartEndpoints {
                authorize: "https://hub/oauth/authorize",
                token: "https://hub/oauth/token",
            }),
        }
    }

    #[test]
    fn states_version_kind_format_and_security() {
        let got = capability_statement(&facts());
        assert_eq!(got["fhirVersion"], "4.0.1");
        assert_eq!(got["kind"], "instance");
        assert_eq!(got["status"], "active");
        assert_eq!(got["format"][0], "json");
        let security = &got["rest"][0]["security"];
        assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
        assert_eq!(security["extension"][0]["extension"][1]["url"], "token");
        let no_smart = capability_statement(&CapabilityFacts {
            smart: None,
            ..facts()
        });
        assert!(no_smart["rest"][0]["security"].get("extension").is_none());
    }

    #[test]
    fn every_advertised_parameter_is_accepted_by_the_parser() {
        let got = capability_statement(&facts());
        let resources = got["rest"][0]["resource"].as_array().unwrap();
        assert_eq!(resources.len(), ResourceType::ALL.len());
        for resource in resources {
            let t = ResourceType::from_name(resource["type"].as_str().unwrap()).unwrap();
            for p in resource["searchParam"].as_array().unwrap() {
                let name = p["name"].as_str().unwrap();
                let value = match p["type"].as_str().unwrap() {
                    "reference" | "token" => "p-1",
                    "date" => "ge2026",
                    _ => "1764403200000-1",
                };
                search::parse(t, &format!("{name}={value}"), true)
                    .unwrap_or_else(|e| panic!("{t:?} {name}: {e}"));
            }
        }
    }
}
