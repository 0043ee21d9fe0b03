#!/bin/sh
# Builds Postern and runs it in the foreground on a self-contained sandbox
# instance under ./sandbox: SMTP on 127.0.0.1:2525, submission on
# 127.0.0.1:2587, local domain example.test delivering into Maildirs in
# ./sandbox/mail. Ctrl-C stops it. The sandbox keeps its queue and mail
# between runs; remove ./sandbox to start afresh.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/build.sh" >/dev/null

sandbox=${POSTERN_SANDBOX:-$top/sandbox}
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
127.0.0.1:2525 inet n - n - - smtpd
127.0.0.1:2587 inet n - n - - smtpd
  -o syslog_name=postern/submission
qmgr unix n - n 300 1 qmgr
local unix - n n - - local
smtp unix - - n - - smtp
CF

cat <<MSG
Postern sandbox in $sandbox (log: $sandbox/maillog, mail: $sandbox/mail/test/new)
Send a test mail from another terminal:
  swaks --server 127.0.0.1:2525 --from you@example.org --to test@example.test
  curl --url smtp://127.0.0.1:2525 --mail-from you@example.org --mail-rcpt test@example.test -T /etc/hostname
Queue: $top/cli/postern -c $etc queue      Stop: Ctrl-C
MSG

"$top/master/master" -c "$etc" -f &
master=$!
trap 'kill -TERM $master 2>/dev/null' INT TERM
wait $master || true
wait $master 2>/dev/null || true
