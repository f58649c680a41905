#!/usr/bin/env bash
# Create a SoftHSM2 token for development and tests.
#   scripts/softhsm-setup.sh DIR [LABEL] [SO_PIN] [USER_PIN]
# Writes DIR/softhsm2.conf and DIR/tokens/, initialises a token, and prints the settings
# a managed key needs. Point the plugin (or a test) at it with SOFTHSM2_CONF=DIR/softhsm2.conf,
# and allow the module with VAULT_PLUGIN_PKCS11_LIBRARIES (both in the plugin's environment).
set -euo pipefail
dir=${1:?usage: softhsm-setup.sh DIR [LABEL] [SO_PIN] [USER_PIN]}
label=${2:-vault-plugin-ts}
so_pin=${3:-5678}
pin=${4:-1234}
command -v softhsm2-util >/dev/null || { echo "softhsm2-util not found: run scripts/setup.sh (Debian package softhsm2)" >&2; exit 1; }
lib=""
for c in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so; do
  [ -f "$c" ] && { lib=$c; break; }
done
[ -n "$lib" ] || { echo "libsofthsm2.so not found" >&2; exit 1; }
mkdir -p "$dir/tokens"
chmod 700 "$dir" "$dir/tokens"
cat > "$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF="$dir/softhsm2.conf"
softhsm2-util --init-token --free --label "$label" --so-pin "$so_pin" --pin "$pin" >/dev/null
cat <<OUT
SOFTHSM2_CONF=$dir/softhsm2.conf
VAULT_PLUGIN_PKCS11_LIBRARIES=$lib
library=$lib
token_label=$label
OUT
