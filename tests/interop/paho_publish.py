#!/usr/bin/env python3
"""Publishes one SenML pack at QoS 1 with paho-mqtt (MQTT 3.1.1 or 5.0) over TLS with a client
certificate, and waits for the PUBACK. Exit 0: acknowledged; 2: refused (v5 reason code) or the
connection closed; 1: anything else. Used by tests/mqtt_interop.rs."""
import ssl
import sys
import threading

import paho.mqtt.client as mqtt


def main() -> int:
    host, port, ca, cert, key, client_id, version, topic, payload = sys.argv[1:10]
    protocol = mqtt.MQTTv5 if version == "5" else mqtt.MQTTv311
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    client.tls_set(ca_certs=ca, certfile=cert, keyfile=key, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    done = threading.Event()
    outcome = {"code": 1, "why": "no answer"}

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            outcome.update(code=2, why=f"connect refused: {reason_code}")
            done.set()
            return
        client.publish(topic, payload, qos=1)

    def on_publish(client, userdata, mid, reason_code, properties):
        if reason_code.is_failure:
            outcome.update(code=2, why=f"publish refused: {reason_code}")
        else:
            outcome.update(code=0, why="acknowledged")
        done.set()

    def on_disconnect(client, userdata, flags, reason_code, properties):
        if not done.is_set():
            outcome.update(code=2, why=f"disconnected: {reason_code}")
            done.set()

    client.on_connect = on_connect
    client.on_publish = on_publish
    client.on_disconnect = on_disconnect
    client.connect(host, int(port), keepalive=30)
    client.loop_start()
    done.wait(timeout=20)
    client.loop_stop()
    print(f"paho MQTT {version}: {outcome['why']}")
    return outcome["code"]


if __name__ == "__main__":
    sys.exit(main())
