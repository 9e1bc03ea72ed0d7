#!/bin/sh
# Install the Debian packages dmail builds and tests with, if any is missing.
# Run as root on a fresh Debian 12 machine; as another user it only reports.
# rspamd, opendkim and clamav-milter (with clamd) are milters the integration tests start
# with configurations of their own (tests/it/test_milter_filters.py): a policy-rc.d keeps
# their package scripts from starting the system's daemons while installing.
# unbound and ldnsutils: the validating resolver over zones signed at test time (DANE,
# tests/it/localdnssec.py); python3-cryptography: an expired certificate (test_dane.py);
# chromium: the HTML archive as a browser builds it (test_dlist_archive.py); libpsl-dev +
# publicsuffix: the organizational domain of DMARC (dlist/dmarc.c).
set -eu
PKGS="build-essential testssl.sh pkg-config clang-format libuv1-dev libssl-dev libidn2-dev libc-ares-dev libpsl-dev publicsuffix libspf2-dev
libcurl4-openssl-dev libcrypt-dev libcmocka-dev zlib1g-dev libhttp-parser-dev clang libclang-rt-14-dev dnsmasq-base python3 python3-pytest python3-aiosmtpd swaks s-nail procmail
mutt openssl procps
iproute2 util-linux libnet-ssleay-perl fetchmail logrotate
dpkg-dev debhelper fakeroot lintian
rspamd opendkim opendkim-tools python3-dkim clamav-daemon clamav-milter
unbound ldnsutils python3-cryptography
chromium"
missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in *"ok installed"*) ;; *) missing="$missing $p" ;; esac
done
if [ -z "$missing" ]; then
    echo "deps: all packages present"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "deps: missing Debian packages:$missing (run 'make deps' as root)" >&2
    exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# written by dmail scripts/deps.sh while installing\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
    trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
if [ -n "$made_policy" ]; then rm -f "$policy"; trap - EXIT; fi
echo "deps: done"
