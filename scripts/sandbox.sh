#!/bin/sh
# Builds Postern and runs it in the foreground on a self-contained sandbox
# instance under ./sandbox: SMTP on 127.0.0.1:2525, submission on
# 127.0.0.1:2587, local domain example.test delivering into Maildirs in
# ./sandbox/mail. Ctrl-C stops it. The sandbox keeps its queue and mail
# between runs; remove ./sandbox to start afresh.
# Environment: POSTERN_SANDBOX (directory), POSTERN_SMTP_PORT and
# POSTERN_SUBMISSION_PORT (to run beside another instance).
# Exits with master's exit status, 0 after Ctrl-C.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/build.sh" >/dev/null

sandbox=${POSTERN_SANDBOX:-$top/sandbox}
smtp_port=${POSTERN_SMTP_PORT:-2525}
submission_port=${POSTERN_SUBMISSION_PORT:-2587}
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

for program in master smtpd qmgr local smtp; do
	ln -sf "$top/$program/$program" "$sandbox/libexec/$program"
done

cat >"$etc/main.cf" <<CF
# Sandbox instance written by scripts/sandbox.sh; edits are overwritten.
myhostname = mail.example.test
mydomain = example.test
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
CF

cat >"$etc/master.cf" <<CF
# service type private unpriv chroot wakeup maxproc command
127.0.0.1:$smtp_port inet n - n - - smtpd
127.0.0.1:$submission_port inet n - n - - smtpd
  -o syslog_name=postern/submission
qmgr unix n - n 300 1 qmgr
local unix - n n - - local
smtp unix - - n - - smtp
CF

cat <<MSG
Postern sandbox in $sandbox (log: $sandbox/maillog, mail: $sandbox/mail/test/new)
Send a test mail from another terminal:
  swaks --server 127.0.0.1:$smtp_port --from you@example.org --to test@example.test
  curl --crlf --url smtp://127.0.0.1:$smtp_port --mail-from you@example.org --mail-rcpt test@example.test -T /etc/hostname
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
