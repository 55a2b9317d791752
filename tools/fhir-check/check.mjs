// Validates FHIR R4 resources with FHIR.js (npm `fhir`, its bundled R4 definitions: offline).
// Usage: node check.mjs FILE... (each file one JSON resource), or no argument to read one
// resource from standard input. Prints every issue and exits 1 if any is an error.
//
// FHIR.js checks structure, cardinality, primitive formats (date, dateTime, code, id, ...) and
// required bindings, recursing into Bundle entries and contained resources. This tool adds
// the rules of FHIR's JSON format (R4 § 2.6.2) and datatypes that FHIR.js does not check:
// no empty arrays, objects or strings; resource ids match [A-Za-z0-9\-\.]{1,64}; the date,
// dateTime and instant elements Vigil writes match the R4 regexes.
import { readFileSync } from 'node:fs';
import fhirPackage from 'fhir';

const { Fhir } = fhirPackage;
const fhir = new Fhir();

const ID = /^[A-Za-z0-9\-.]{1,64}$/;
const INSTANT = /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$/;
const DATE = /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$/;
const DATE_TIME = /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$/;
// Elements of these types in the resources Vigil writes (regexes from the R4 datatypes page).
const FORMATS = new Map([
  ['recorded', ['instant', INSTANT]], ['lastUpdated', ['instant', INSTANT]], ['timestamp', ['instant', INSTANT]],
  ['birthDate', ['date', DATE]],
  ['effectiveDateTime', ['dateTime', DATE_TIME]], ['identifiedDateTime', ['dateTime', DATE_TIME]], ['date', ['dateTime', DATE_TIME]],
]);

function jsonRules(value, path, issues) {
  if (Array.isArray(value)) {
    if (value.length === 0) issues.push({ severity: 'error', location: path, message: 'empty array (FHIR JSON forbids it)' });
    value.forEach((item, i) => jsonRules(item, `${path}[${i}]`, issues));
  } else if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 0) issues.push({ severity: 'error', location: path, message: 'empty object (FHIR JSON forbids it)' });
    if ('resourceType' in value && 'id' in value && !ID.test(String(value.id))) {
      issues.push({ severity: 'error', location: `${path}.id`, message: 'resource id is not a FHIR id' });
    }
    for (const key of keys) {
      const child = value[key];
      const format = FORMATS.get(key);
      if (format && typeof child === 'string' && !format[1].test(child)) {
        issues.push({ severity: 'error', location: `${path}.${key}`, message: `not a FHIR ${format[0]}` });
      }
      jsonRules(child, `${path}.${key}`, issues);
    }
  } else if (typeof value === 'string' && value.trim() === '') {
    issues.push({ severity: 'error', location: path, message: 'empty or blank string (FHIR forbids it)' });
  }
}

function check(name, text) {
  let resource;
  try {
    resource = JSON.parse(text);
  } catch (e) {
    return [{ severity: 'error', location: name, message: `not JSON: ${e.message}` }];
  }
  const issues = [];
  if (typeof resource !== 'object' || resource === null || typeof resource.resourceType !== 'string') {
    return [{ severity: 'error', location: name, message: 'not a FHIR resource (no resourceType)' }];
  }
  const result = fhir.validate(resource, { errorOnUnexpected: true });
  for (const m of result.messages) {
    issues.push({ severity: m.severity, location: `${m.resourceId} ${m.location}`, message: m.message });
  }
  jsonRules(resource, resource.resourceType, issues);
  return issues;
}

const files = process.argv.slice(2);
const inputs = files.length > 0
  ? files.map((f) => [f, readFileSync(f, 'utf8')])
  : [['<stdin>', readFileSync(0, 'utf8')]];

let errors = 0;
let resources = 0;
for (const [name, text] of inputs) {
  resources += 1;
  for (const issue of check(name, text)) {
    if (issue.severity === 'error' || issue.severity === 'fatal') errors += 1;
    console.log(`${name}: ${issue.severity} ${issue.location}: ${issue.message}`);
  }
}
console.log(`fhir-check: ${resources} resources, ${errors} errors`);
process.exit(errors === 0 && resources > 0 ? 0 : 1);
