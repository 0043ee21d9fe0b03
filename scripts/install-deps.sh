#!/bin/sh
# Installs what building and testing Postern needs on Debian 12, and
# creates the system users "postern" (mail_owner) and "postern-auth"
# (authd_user) and the group "postdrop" (setgid_group). Run as root.
set -eu
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: run as root (it calls apt-get, useradd and groupadd)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
	build-essential autoconf automake pkg-config \
	libgnutls28-dev libdb5.3-dev db5.3-util libsasl2-dev libsasl2-modules \
	sasl2-bin libpcre2-dev libevent-dev \
	python3 swaks curl gnutls-bin openssl msmtp ca-certificates procps \
	dovecot-core dovecot-lmtpd
if ! getent passwd postern >/dev/null; then
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin postern
fi
getent group postdrop >/dev/null || groupadd --system postdrop  # setgid_group of sendmail: may write into maildrop/
getent passwd postern-auth >/dev/null || useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postern-auth  # authd_user: the only reader of the sasldb
