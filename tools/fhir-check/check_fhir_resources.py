#!/usr/bin/env python3
"""A second FHIR R4 check: parses each JSON resource with the fhir.resources models
(6.4.0 = FHIR 4.0.1; see requirements.txt), which enforce types, cardinality, choice
types (one value[x]) and primitive regexes. Usage: check_fhir_resources.py FILE...
Prints every failure; exits 1 if any resource fails."""
import json
import sys

import fhir.resources
from fhir.resources import construct_fhir_element

if fhir.resources.__fhir_version__ != "4.0.1":
    sys.exit(f"fhir.resources models FHIR {fhir.resources.__fhir_version__}, not 4.0.1")

failed = 0
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    try:
        construct_fhir_element(data["resourceType"], data)
    except Exception as e:  # pydantic.ValidationError and KeyError alike
        failed += 1
        print(f"{path}: {e}")
print(f"fhir.resources {fhir.resources.__version__} (FHIR {fhir.resources.__fhir_version__}): "
      f"{len(sys.argv) - 1} resources, {failed} failed")
sys.exit(1 if failed or len(sys.argv) < 2 else 0)
