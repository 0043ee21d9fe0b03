#!/bin/sh
# Builds Postern and runs it in the foreground on a self-contained sandbox
# instance under ./sandbox: SMTP on 127.0.0.1:2525, submission on
# 127.0.0.1:2587, both offering STARTTLS, implicit TLS on 127.0.0.1:2465,
# local domain example.test delivering into Maildirs in ./sandbox/mail.
# Submission and implicit TLS are set up like the shipped master.cf: they
# take mail only after AUTH, and submission only after STARTTLS.
# Ctrl-C stops it. The sandbox keeps its queue, mail and test
# certificates between runs; remove ./sandbox to start afresh.
# Environment: POSTERN_SANDBOX (directory), POSTERN_SMTP_PORT,
# POSTERN_SUBMISSION_PORT and POSTERN_SMTPS_PORT (to run beside another
# instance).
# Exits with master's exit status, 0 after Ctrl-C.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/build.sh" >/dev/null

sandbox=${POSTERN_SANDBOX:-$top/sandbox}
smtp_port=${POSTERN_SMTP_PORT:-2525}
submission_port=${POSTERN_SUBMISSION_PORT:-2587}
smtps_port=${POSTERN_SMTPS_PORT:-2465}
etc=$sandbox/etc
mkdir -p "$etc" "$sandbox/libexec" "$sandbox/mail"
chmod 755 "$sandbox"

if [ "$(id -u)" -eq 0 ]; then
	owner=postern
	getent passwd "$owner" >/dev/null || {
		echo "sandbox.sh: user $owner is missing; run scripts/install-deps.sh first" >&2
		exit 1
	}
else
	owner=$(id -un)
fi
uid=$(id -u "$owner")
gid=$(id -g "$owner")
[ "$(id -u)" -ne 0 ] || chown "$owner:" "$sandbox/mail"

# As root the services run as $owner, which must be able to reach the
# queue and the Maildirs. A checkout under /root (mode 0700) fails this.
if [ "$(id -u)" -eq 0 ] &&
	! setpriv --reuid="$uid" --regid="$gid" --clear-groups test -x "$sandbox"; then
	echo "sandbox.sh: user $owner cannot enter $sandbox (a parent directory" \
		"is not searchable); set POSTERN_SANDBOX to a directory it can" \
		"reach, for example /var/tmp/postern-sandbox" >&2
	exit 1
fi

# Test certificates, made once: a root CA, an intermediate CA and server
# certificates for mail.example.test (scripts/make-test-certs.sh).
certs=$sandbox/certs
if [ ! -f "$certs/server-chain.pem" ]; then
	DAYS=365 "$top/scripts/make-test-certs.sh" "$certs" mail.example.test >/dev/null
fi

# SMTP AUTH: the user test@example.test with a random password, made
# once, in the sandbox's own sasldb, which only authd's user may read.
sasl_data=$sandbox/sasl-data
sasl_password_file=$sasl_data/test-password
if [ ! -f "$sasl_data/sasldb2" ]; then
	mkdir -p "$sasl_data"
	head -c 12 /dev/urandom | base64 | tr -d '/+=' >"$sasl_password_file"
	saslpasswd2 -c -p -f "$sasl_data/sasldb2" -u example.test test \
		<"$sasl_password_file"
	chmod 600 "$sasl_data/sasldb2" "$sasl_password_file"
	chmod 700 "$sasl_data"
	if [ "$(id -u)" -eq 0 ]; then
		chown postern-auth: "$sasl_data" "$sasl_data/sasldb2"
	fi
fi
sasl_password=$(cat "$sasl_password_file")
mkdir -p "$etc/sasl"
cat >"$etc/sasl/smtpd.conf" <<CF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $sasl_data/sasldb2
mech_list: PLAIN LOGIN
CF

for program in master smtpd qmgr local smtp tlsproxy authd anvil pickup; do
	ln -sf "$top/$program/$program" "$sandbox/libexec/$program"
done

cat >"$etc/main.cf" <<CF
# Sandbox instance written by scripts/sandbox.sh; edits are overwritten.
myhostname = mail.example.test
mydomain = example.test
# RFC 5321 4.5.1: RCPT TO:<Postmaster> must work, and a bare name gets @\$myorigin.
myorigin = \$mydomain
mydestination = localhost
mynetworks = 127.0.0.0/8 [::1]/128
virtual_mailbox_domains = example.test
virtual_mailbox_base = $sandbox/mail
virtual_mailbox_maps = inline:{ test@example.test=test/, postmaster@example.test=postmaster/ }
virtual_uid_maps = static:$uid
virtual_gid_maps = static:$gid
alias_maps =
local_recipient_maps = unix:passwd.byname
queue_directory = $sandbox/queue
daemon_directory = $sandbox/libexec
mail_owner = $owner
maillog_file = $sandbox/maillog
smtpd_peername_lookup = no
smtpd_tls_chain_files = $certs/server-chain.pem, $certs/server-ec-chain.pem
# The test root CA, so that master's certificate check at start can
# verify the chain (it is in no system store).
smtpd_tls_CAfile = $certs/ca.pem
smtpd_tls_security_level = may
smtpd_sasl_auth_enable = yes
smtpd_sasl_local_domain = example.test
CF

cat >"$etc/master.cf" <<CF
# service type private unpriv chroot wakeup maxproc command
127.0.0.1:$smtp_port inet n - n - - smtpd
127.0.0.1:$submission_port inet n - n - - smtpd
  -o syslog_name=postern/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
127.0.0.1:$smtps_port inet n - n - - smtpd
  -o syslog_name=postern/smtps -o smtpd_tls_wrappermode=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
qmgr unix n - n 300 1 qmgr
anvil unix - - n - 1 anvil
pickup unix n - n 60 1 pickup
local unix - n n - - local
smtp unix - - n - - smtp
tlsproxy unix - - n - 1 tlsproxy
authd unix - - n - 1 authd
CF

cat <<MSG
Postern sandbox in $sandbox (log: $sandbox/maillog, mail: $sandbox/mail/test/new)
Send a test mail from another terminal:
  swaks --server 127.0.0.1:$smtp_port --from you@example.org --to test@example.test
  curl --crlf --url smtp://127.0.0.1:$smtp_port --mail-from you@example.org --mail-rcpt test@example.test -T /etc/hostname
With STARTTLS, trusting only the sandbox root CA ($certs/ca.pem):
  swaks --server 127.0.0.1:$smtp_port --tls --tls-ca-path $certs/ca.pem --tls-verify --tls-sni mail.example.test --from you@example.org --to test@example.test
  curl --crlf --ssl-reqd --cacert $certs/ca.pem --connect-to mail.example.test:$smtp_port:127.0.0.1:$smtp_port --url smtp://mail.example.test:$smtp_port --mail-from you@example.org --mail-rcpt test@example.test -T /etc/hostname
Submission ($submission_port, STARTTLS) and implicit TLS ($smtps_port) need AUTH
as user test, password $sasl_password
(SASL configuration: $etc/sasl/smtpd.conf, sasldb: $sasl_data/sasldb2):
  swaks --server 127.0.0.1:$submission_port --tls --tls-ca-path $certs/ca.pem --tls-verify --tls-sni mail.example.test --auth PLAIN --auth-user test --auth-password '$sasl_password' --from test@example.test --to test@example.test
  swaks --server 127.0.0.1:$smtps_port --tlsc --tls-ca-path $certs/ca.pem --tls-verify --tls-sni mail.example.test --auth LOGIN --auth-user test --auth-password '$sasl_password' --from test@example.test --to test@example.test
  curl --crlf --ssl-reqd --cacert $certs/ca.pem --connect-to mail.example.test:$submission_port:127.0.0.1:$submission_port --user 'test:$sasl_password' --url smtp://mail.example.test:$submission_port --mail-from test@example.test --mail-rcpt test@example.test -T /etc/hostname
  curl --crlf --cacert $certs/ca.pem --connect-to mail.example.test:$smtps_port:127.0.0.1:$smtps_port --user 'test:$sasl_password' --url smtps://mail.example.test:$smtps_port --mail-from test@example.test --mail-rcpt test@example.test -T /etc/hostname
Local submission (pickup):
  echo 'Subject: hello' | $top/cli/sendmail/sendmail -C $etc test@example.test
Queue: $top/cli/postern -c $etc queue      Stop: Ctrl-C
MSG

"$top/master/master" -c "$etc" -f &
master=$!
stopping=0
trap 'stopping=1; kill -TERM $master 2>/dev/null' INT TERM
status=0
wait $master || status=$?
# A trapped signal interrupts the first wait, so wait again for master.
if [ "$stopping" -eq 1 ]; then
	status=0
	wait $master 2>/dev/null || status=$?
fi
exit "$status"
