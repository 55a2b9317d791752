// Checks Vigil's vocabulary against the UCUM reference implementation (NLM's ucum-lhc):
// every unit code must be valid UCUM exactly as written, and every conversion Vigil applies
// must agree with UCUM's own. Reads `vigil codes --format json` on standard input.
//
// Glucose molar mass for mass <-> substance conversions: 180.156 g/mol (IUPAC atomic weights),
// the same figure vigil-model uses; UCUM needs it to relate mg/dL and mmol/L at all.
import ucum from '@lhncbc/ucum-lhc';

const GLUCOSE_MOLAR_MASS = 180.156;
const utils = ucum.UcumLhcUtils.getInstance();
const quantities = JSON.parse(await new Promise((resolve, reject) => {
  let text = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => { text += chunk; });
  process.stdin.on('end', () => resolve(text));
  process.stdin.on('error', reject);
}));

let passed = 0;
let failed = 0;
const check = (ok, what) => {
  if (ok) { passed += 1; } else { failed += 1; console.log(`FAIL ${what}`); }
};

for (const q of quantities) {
  for (const unit of q.units) {
    const parsed = utils.validateUnitString(unit.ucum, false);
    check(parsed.status === 'valid' && parsed.ucumCode === unit.ucum,
      `${q.key}: "${unit.ucum}" is not valid UCUM as written (${parsed.status}: ${parsed.msg})`);
    if (unit.ucum === q.canonical_unit) continue;
    for (const value of [0, 1, 37, 98.6, 250]) {
      const ours = value * unit.scale + unit.offset;
      const theirs = utils.convertUnitTo(unit.ucum, value, q.canonical_unit,
        { molecularWeight: GLUCOSE_MOLAR_MASS });
      const close = theirs.status === 'succeeded'
        && Math.abs(theirs.toVal - ours) <= 1e-9 * Math.max(1, Math.abs(ours));
      check(close, `${q.key}: ${value} ${unit.ucum} -> ${q.canonical_unit}: Vigil ${ours}, UCUM ${theirs.toVal} (${theirs.status} ${theirs.msg})`);
    }
  }
}

console.log(`ucum-check: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
