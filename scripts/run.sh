#!/bin/sh
# run.sh BINDIR - start the suite (dsmtp, dpop) under dwatch in the foreground on ./run/
# with conf/dev.conf (make run).
#
# Creates run/ (mailboxes, spool, work directory, a self-signed certificate, a users
# file with the demo user) and run/dmail.conf from conf/dev.conf with absolute paths,
# each only when missing: users added with `tellpop adduser` and edits of run/dmail.conf
# stay from one start to the next (RESET=1, `make run RESET=1`, removes them all and
# starts over). Refuses to start when the suite already runs there. Prints how to send
# and read a message and how to control the servers with tellsmtp/tellpop (the ports from
# run/dmail.conf), and runs BINDIR/dwatch -f until Ctrl-C (without a dwatch binary: dsmtp
# and dpop directly).
# Works as root (dsmtp drops to nobody, which then owns run/'s mail directories) and as
# an ordinary user. Overrides for tests: DMAIL_RUN_DIR, DMAIL_SMTP_PORT,
# DMAIL_SUBMISSION_PORT, DMAIL_SMTPS_PORT.
set -eu

bindir=${1:?usage: run.sh BINDIR}
bindir=$(cd "$bindir" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
run=${DMAIL_RUN_DIR:-$top/run}
smtp_port=${DMAIL_SMTP_PORT:-2525}
sub_port=${DMAIL_SUBMISSION_PORT:-2587}
smtps_port=${DMAIL_SMTPS_PORT:-2465}
pop_port=${DMAIL_POP_PORT:-2110}
pop3s_port=${DMAIL_POP3S_PORT:-2995}

die() { echo "run: $*" >&2; exit 1; }

[ -x "$bindir/dsmtp" ] || die "no $bindir/dsmtp; build it first (make)"
command -v openssl >/dev/null || die "openssl is needed (apt-get install openssl)"

# Already running there? Its dsmtp answers on the control socket.
if [ -f "$run/dmail.conf" ] && [ -x "$bindir/tellsmtp" ] &&
    "$bindir/tellsmtp" -c "$run/dmail.conf" -w 3 status >/dev/null 2>&1; then
    die "the suite already runs on $run (its dsmtp answers); stop it first (Ctrl-C where it runs)"
fi

if [ "${RESET:-}" = 1 ]; then
    echo "run: RESET=1: starting over (mailboxes, queue, users, certificate and dmail.conf of $run removed)"
    rm -rf "$run/drop" "$run/spool" "$run/work" "$run/tls" "$run/users" "$run/dmail.conf" \
        "$run/demo-password"
fi

mkdir -p "$run" "$run/drop" "$run/spool" "$run/work" "$run/tls" "$run/dlist"
run=$(cd "$run" && pwd)
# a demo mailing list for dlist (lists.dat(5)), once
[ -s "$run/dlist/lists.dat" ] ||
    printf '# made by scripts/run.sh: dlist -c run/dmail.conf who talk\nlist talk\n title The demo list\n' \
        >"$run/dlist/lists.dat"

if [ "$(id -u)" = 0 ]; then
    run_as=nobody
else
    run_as=$(id -un)
fi

# A self-signed certificate, once.
if [ ! -s "$run/tls/cert.pem" ] || [ ! -s "$run/tls/key.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,DNS:mx.example.test,IP:127.0.0.1" \
        -keyout "$run/tls/key.pem" -out "$run/tls/cert.pem" >/dev/null 2>&1 ||
        die "openssl could not make a certificate"
    chmod 600 "$run/tls/key.pem"
fi

# The users file with the demo user, once: a random password, kept in run/demo-password
# (tellpop adduser/passwd change the users file; RESET=1 makes a new one).
umask 077
if [ ! -s "$run/users" ]; then
    openssl rand -base64 12 | tr -d '/+=\n' | cut -c1-12 >"$run/demo-password"
    password=$(cat "$run/demo-password")
    hash=$(printf '%s' "$password" | openssl passwd -6 -stdin) || die "openssl passwd failed"
    printf '# made by scripts/run.sh\ndemo:%s\n' "$hash" >"$run/users"
fi
password=$(cat "$run/demo-password" 2>/dev/null) || password="(unknown: $run/demo-password is gone)"
umask 022

servers=dsmtp
[ -x "$bindir/dpop" ] && servers=dsmtp,dpop
[ -x "$bindir/dlist" ] && servers=$servers,dlist
if [ ! -s "$run/dmail.conf" ]; then
    sed -e "s|@RUN@|$run|g" -e "s|@RUN_AS@|$run_as|g" -e "s|@SMTP_PORT@|$smtp_port|g" \
        -e "s|@DWATCH_SERVERS@|$servers|g" \
        -e "s|@SUBMISSION_PORT@|$sub_port|g" -e "s|@SMTPS_PORT@|$smtps_port|g" \
        -e "s|@POP_PORT@|$pop_port|g" -e "s|@POP3S_PORT@|$pop3s_port|g" \
        "$top/conf/dev.conf" >"$run/dmail.conf"
else
    # kept: what it says is what the servers will do
    conf_get() { awk -v k="$1" '$1 == k { v = $2 } END { print v }' "$run/dmail.conf"; }
    smtp_port=$(conf_get smtp_port)
    sub_port=$(conf_get submission_port)
    smtps_port=$(conf_get smtps_port)
    pop_port=$(conf_get pop_port)
    pop3s_port=$(conf_get pop3s_port)
    echo "run: keeping $run/dmail.conf and its users (make run RESET=1 starts over)"
fi

if [ "$(id -u)" = 0 ]; then
    # dsmtp reads its config and keys as root, then works as nobody.
    chown -R nobody "$run/drop" "$run/spool" "$run/work"
    chown nobody "$run/users" "$run/tls/key.pem" "$run/tls/cert.pem"
    if command -v runuser >/dev/null &&
        ! runuser -u nobody -- test -w "$run/drop" 2>/dev/null; then
        die "$run/drop is not reachable by user nobody (a parent directory is not" \
            "searchable by others); chmod o+x the parents or set DMAIL_RUN_DIR"
    fi
fi

"$bindir/dsmtp" -t -c "$run/dmail.conf" >/dev/null || {
    "$bindir/dsmtp" -t -c "$run/dmail.conf"
    die "run/dmail.conf has errors (see above)"
}

rel=$run
case "$run" in "$PWD"/*) rel=${run#"$PWD"/} ;; esac
cat <<MSG
dmail: dsmtp on 127.0.0.1 (SMTP $smtp_port, submission $sub_port, SMTPS $smtps_port), config $rel/dmail.conf
  demo user:  demo@example.test   password: $password

  Send a message:
    swaks --server 127.0.0.1:$smtp_port --to demo@example.test
  It lands in $rel/drop/demo (read it: mutt -f $rel/drop/demo)

  Submission with STARTTLS and AUTH:
    swaks --server 127.0.0.1:$sub_port --tls --auth PLAIN --auth-user demo --auth-password '$password' --to demo@example.test
  SMTPS (implicit TLS):
    swaks --server 127.0.0.1:$smtps_port --tls-on-connect --auth LOGIN --auth-user demo --auth-password '$password' --to demo@example.test

MSG
if [ -x "$bindir/dpop" ]; then
    cat <<MSG
  Read your mail (POP3 $pop_port with STLS, POP3S $pop3s_port):
    python3 -c "import poplib,ssl; p=poplib.POP3('127.0.0.1',$pop_port); p.stls(ssl._create_unverified_context()); p.user('demo'); p.pass_('$password'); print(p.stat()); print(b'\\n'.join(p.retr(1)[1]).decode())"
    fetchmail --ssl --nosslcertck -p POP3 -P $pop3s_port -u demo -k --mda 'cat >>$rel/fetched' 127.0.0.1
      (asks for the password, keeps the mail on the server, appends it to $rel/fetched)

MSG
fi
bin=$bindir
case "$bindir" in "$PWD"/*) bin=${bindir#"$PWD"/} ;; esac
if [ -x "$bindir/dwatch" ]; then
    cat <<MSG
  Control it: dwatch supervises $servers (man -l man/dwatch.8, man -l man/tellsmtp.8)
    $bin/tellsmtp -c $rel/dmail.conf status          (also: stats, stats -p, queue, debug debug)
    $bin/tellsmtp -c $rel/dmail.conf reload          (after editing $rel/dmail.conf)
    $bin/tellsmtp -c $rel/dmail.conf restart         (dwatch restarts dsmtp)
MSG
    if [ -x "$bindir/dpop" ]; then
        cat <<MSG
    $bin/tellpop -c $rel/dmail.conf adduser alice    (asks for a password; dpop and dsmtp reload)
    $bin/tellpop -c $rel/dmail.conf who
MSG
    fi
    if [ -x "$bindir/dlist" ]; then
        cat <<MSG
    $bin/dlist -c $rel/dmail.conf lists              (the lists of $rel/dlist/lists.dat)
    $bin/dlist -c $rel/dmail.conf add talk demo@example.test
MSG
    fi
    echo
fi
echo "  Ctrl-C stops it. Log follows."
if [ -x "$bindir/dwatch" ]; then
    exec "$bindir/dwatch" -f -c "$run/dmail.conf"
elif [ -x "$bindir/dpop" ]; then
    "$bindir/dpop" -f -c "$run/dmail.conf" &
    dpop_pid=$!
    trap 'kill $dpop_pid 2>/dev/null; wait $dpop_pid 2>/dev/null' EXIT
    trap 'exit 130' INT TERM
    "$bindir/dsmtp" -f -c "$run/dmail.conf"
else
    exec "$bindir/dsmtp" -f -c "$run/dmail.conf"
fi
