#!/bin/sh
# dmail-setup - one-time set-up of a dmail server: the run_as user and group, the spool,
# mailbox and work directories with the owners and modes the servers and sendmail(8)
# expect, the users file. Idempotent: run it again after changing those settings.
# Installed as dmail-setup by make install (which runs it as root) and by the Debian
# package's postinst. See dmail-setup(8).
set -eu

prog=dmail-setup
conf=${DMAIL_CONF:-/etc/dmail/dmail.conf}
sendmail=
dry=

usage() {
    echo "usage: $prog [-n] [-c FILE] [-s SENDMAIL]" >&2
    exit 64
}

while getopts c:s:nh opt; do
    case $opt in
    c) conf=$OPTARG ;;
    s) sendmail=$OPTARG ;;
    n) dry=1 ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage

# setting NAME [SYNONYM] DEFAULT - the last value of NAME (or SYNONYM) in the
# configuration, else DEFAULT; a value is the first word after the name.
setting() {
    v=
    if [ -r "$conf" ]; then
        v=$(sed -n "s/^[[:space:]]*\\($1\\)[[:space:]]\\{1,\\}\\([^[:space:]#]*\\).*/\\2/p" \
            "$conf" | tail -n 1)
    fi
    echo "${v:-$2}"
}

run() {
    if [ -n "$dry" ]; then echo "$*"; else "$@"; fi
}

# dir PATH OWNER GROUP MODE - PATH exists (parents root's, 0755) with exactly that
# owner and mode; only PATH itself is changed, never what it holds.
dir() {
    [ -d "$1" ] || run mkdir -p -m 0755 "$1"
    run chown "$2:$3" "$1"
    run chmod "$4" "$1"
}

if [ "$(id -u)" != 0 ] && [ -z "$dry" ]; then
    echo "$prog: must run as root (or -n to show what it would do)" >&2
    exit 77
fi

user=$(setting run_as dmail)
spool=$(setting spool_dir /var/spool/dmail)
drop=$(setting 'drop_path\|drop_dir' /var/spool/dmail/drop)
work=$(setting 'work_path\|work_dir' /var/lib/dmail)
method=$(setting authent_method users_file)
users=$(setting users_file /etc/dmail/users)

if [ "$user" = root ]; then
    echo "$prog: run_as is root in $conf: the servers never run as root" >&2
    exit 78
fi

# The account: a system user with its own group, no login, home the work directory.
if ! getent group "$user" >/dev/null && ! getent passwd "$user" >/dev/null; then
    if command -v addgroup >/dev/null; then
        run addgroup --system --quiet "$user"
    else
        run groupadd --system "$user"
    fi
fi
if ! getent passwd "$user" >/dev/null; then
    if command -v adduser >/dev/null; then
        run adduser --system --quiet --ingroup "$user" --home "$work" --no-create-home \
            --shell /usr/sbin/nologin --gecos "dmail mail servers" "$user"
    else
        run useradd --system --gid "$user" --home-dir "$work" --no-create-home \
            --shell /usr/sbin/nologin --comment "dmail mail servers" "$user"
    fi
fi
if [ -n "$dry" ] && ! getent passwd "$user" >/dev/null; then
    group=$user
else
    group=$(id -gn "$user")
fi

# The spool (dsmtp, as run_as): maildrop/ 3770 (set-group-ID, sticky: sendmail, set-group-ID
# to the group, writes files there that dsmtp reads and removes), queue/ 2750 in that
# group (mailq lists it), tmp/ and corrupt/ dsmtp's alone. See dmail-queue(5).
dir "$spool" "$user" "$group" 0755
dir "$spool/maildrop" "$user" "$group" 3770
dir "$spool/queue" "$user" "$group" 2750
dir "$spool/tmp" "$user" "$group" 0700
dir "$spool/corrupt" "$user" "$group" 0700
# Mailboxes of the users-file users (dsmtp writes, dpop reads) and the work files
# (control sockets, pid files, state).
dir "$drop" "$user" "$group" 0750
dir "$work" "$user" "$group" 0750

# dmail.conf can hold secrets: root's, readable by the group the servers reload it as.
# Only a file still in root's group is changed, so a choice of the administrator stays.
if [ -f "$conf" ] && [ "$(stat -c %G "$conf")" = root ]; then
    run chown "root:$group" "$conf"
    run chmod 0640 "$conf"
fi
if [ "$method" = users_file ] && [ ! -e "$users" ] && [ -d "$(dirname "$users")" ]; then
    if [ -n "$dry" ]; then
        echo "create $users (root:$group 0640)"
    else
        umask 027
        printf '%s\n' "# dmail users: user[@domain]:crypt-hash lines; add with tellpop adduser" \
            >"$users"
        chown "root:$group" "$users"
        chmod 0640 "$users"
    fi
fi

# sendmail is set-group-ID to the group (sendmail(8)).
if [ -n "$sendmail" ]; then
    run chown "root:$group" "$sendmail"
    run chmod 2755 "$sendmail"
fi
[ -n "$dry" ] || echo "$prog: user $user, group $group; $spool, $drop, $work ready"
