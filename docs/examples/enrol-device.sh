#!/usr/bin/env bash
# Enrol a device with a key it made itself, then renew with a new key: the commands of
# docs/device-enrolment.md, run as written by the end-to-end tests.
#
# Usage: HUB=https://localhost:8443 CA=/path/to/ca.crt.pem TOKEN=vigil1.… enrol-device.sh WORKDIR
set -euo pipefail
cd "$1"

# 1. The device makes its own key pair and a CSR. The private key never leaves the device;
#    the subject is ignored (the hub names the device itself).
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout device.key -out device.csr -subj "/CN=device"

# 2. Enrol: send the CSR with the one-time token, over TLS that checks the hub's certificate.
curl --fail-with-body --silent --show-error --cacert "$CA" \
  -H "Authorization: Bearer $TOKEN" --data-binary @device.csr \
  -o device.pem "$HUB/api/v1/enroll"

# 3. device.pem holds the device certificate followed by the CA certificate.
openssl verify -CAfile "$CA" -purpose sslclient device.pem
openssl x509 -in device.pem -noout -ext subjectAltName

# 4. Before the certificate expires, renew over mutual TLS. This one also rotates the key.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout device-next.key -out device-next.csr -subj "/CN=device"
curl --fail-with-body --silent --show-error --cacert "$CA" \
  --cert device.pem --key device.key --data-binary @device-next.csr \
  -o device-next.pem "$HUB/api/v1/renew"
openssl verify -CAfile "$CA" -purpose sslclient device-next.pem
